"""Parameter-free approximate equivariance: groups, representations, actions, the method's loss,
models, training and evaluation, shared by every experiment of the pipeline."""
