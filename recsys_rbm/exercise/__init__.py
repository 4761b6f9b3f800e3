"""The MNIST course exercise (behind ``rbm-rec mnist-figures``): its recipe, figures and sample diversity."""
