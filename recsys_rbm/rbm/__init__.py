"""The restricted Boltzmann machine: unit types, its mathematics as tensor functions, the model, Gibbs chains."""
