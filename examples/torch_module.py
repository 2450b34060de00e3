"""A tensorcalc layer inside a torch.nn.Module: its backward pass is the symbolic VJP.

Run: python examples/torch_module.py   (needs torch)
"""

import sys

try:
    import torch
except ImportError:
    print("torch is not installed; skipping")
    sys.exit(0)

import tensorcalc as tc

layer = tc.to_torch("H[b,h] = tanh(X[b,d] W[d,h] + c[h])")


class Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.W = torch.nn.Parameter(0.5 * torch.randn(3, 16, dtype=torch.float64))
        self.c = torch.nn.Parameter(torch.zeros(16, dtype=torch.float64))
        self.out = torch.nn.Linear(16, 1, dtype=torch.float64)

    def forward(self, x):
        return self.out(layer(X=x, W=self.W, c=self.c))


torch.manual_seed(0)
x = torch.randn(128, 3, dtype=torch.float64)
y = torch.sin(x.sum(dim=1, keepdim=True))
net = Net()

# Our backward agrees with autograd through the same formula.
(net(x) - y).pow(2).mean().backward()
W = net.W.detach().clone().requires_grad_()
c = net.c.detach().clone().requires_grad_()
(net.out(torch.tanh(x @ W + c)) - y).pow(2).mean().backward()
assert torch.allclose(net.W.grad, W.grad) and torch.allclose(net.c.grad, c.grad)

opt = torch.optim.Adam(net.parameters(), lr=0.05)
first = None
for _ in range(200):
    opt.zero_grad()
    loss = (net(x) - y).pow(2).mean()
    loss.backward()
    opt.step()
    first = first if first is not None else loss.item()
print(f"loss {first:.4f} -> {loss.item():.4f}")
assert loss.item() < 0.2 * first
