"""A convolution layer written in index notation, trained inside torch.

The layer is ``y[b,o,i,j] = x[b,c,i+a-1,j+e-1] W[o,c,a,e] + k[o]`` (a "same" 3×3
convolution: the size of i and j is given, so reads past the edges are zeros). On
torch tensors tensorcalc runs it, and the two gradients of its backward pass, as
torch's own convolution kernels (conv2d, and convolution backward for the weight and
for the input), so the layer costs what ``torch.nn.Conv2d`` costs. Its gradients are
checked against torch's own conv2d first.

Run: python examples/torch_conv.py   (needs torch)
"""

import sys

try:
    import torch
except ImportError:
    print("torch is not installed; skipping")
    sys.exit(0)

import tensorcalc as tc

H = 12  # image side
conv = tc.to_torch(tc.compile("y[b,o,i,j] = x[b,c,i+a-1,j+e-1] W[o,c,a,e] + k[o]",
                              sizes={"i": H, "j": H}))


class Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.W = torch.nn.Parameter(0.3 * torch.randn(8, 1, 3, 3, dtype=torch.float64))
        self.k = torch.nn.Parameter(torch.zeros(8, dtype=torch.float64))
        self.out = torch.nn.Linear(8, 1, dtype=torch.float64)

    def forward(self, x):
        h = torch.tanh(conv(x=x, W=self.W, k=self.k))  # (b, 8, H, H)
        return self.out(h.mean(dim=(2, 3)))


torch.manual_seed(0)
x = torch.randn(64, 1, H, H, dtype=torch.float64)
# the target: how much of each image's energy is in vertical edges
y = (x[:, :, 1:, :] - x[:, :, :-1, :]).pow(2).mean(dim=(1, 2, 3)).unsqueeze(1)
net = Net()

# Our backward agrees with autograd through torch's own convolution.
(net(x) - y).pow(2).mean().backward()
W = net.W.detach().clone().requires_grad_()
k = net.k.detach().clone().requires_grad_()
h = torch.tanh(torch.nn.functional.conv2d(x, W, k, padding=1))
(net.out(h.mean(dim=(2, 3))) - y).pow(2).mean().backward()
assert torch.allclose(net.W.grad, W.grad) and torch.allclose(net.k.grad, k.grad)

opt = torch.optim.Adam(net.parameters(), lr=0.03)
first = None
for _ in range(100):
    opt.zero_grad()
    loss = (net(x) - y).pow(2).mean()
    loss.backward()
    opt.step()
    first = first if first is not None else loss.item()
print(f"loss {first:.4f} -> {loss.item():.4f}")
assert loss.item() < 0.2 * first
