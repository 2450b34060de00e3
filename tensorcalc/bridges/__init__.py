"""tensorcalc inside other libraries' autodiff: ``to_torch`` (a ``torch.autograd``
function), ``to_jax`` (a ``jax.custom_vjp``), and ``bound`` (a program with its
derivatives made ready for them)."""
