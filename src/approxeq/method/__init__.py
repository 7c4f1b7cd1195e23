"""The method, shared by every experiment: its loss, the learned representation, training, evaluation."""
