"""recsys_rbm: restricted Boltzmann machines on the GPU and the CPU, and a recommender built on them."""

__version__ = "0.1.0"
