"""Networks: the EncoderHead shape, the method's networks, the equivariant baselines, the registry."""
