"""What users run beside the API: ``cli`` (the ``tensorcalc`` command), ``check``
(finite differences), ``explain`` (a derivation in words), ``files`` (program files)."""
