"""Training: the one loop (trainer), its gradient types, momentum, the dense objective, data-parallel runs."""
