"""An encoder equivariant by construction, for tests of the method's loss and the latent study
(shared across test folders: tests/ is on sys.path)."""
import torch
from torch import nn

from approxeq.algebra.actions import image_action
from approxeq.algebra.groups import group_from_name
from approxeq.algebra.representations import apply_matrices, latent_representation
from approxeq.nn.encoder_head import EncoderHead


class OrbitEncoder(nn.Module):
    """Equivariant by construction: E(x)_{c,h} = f_c(T(h⁻¹) x), so E(T(g)x) = ρ_reg(g)^{⊕m} E(x);
    plus invariant coordinates (means of f over the orbit) for the trivial part."""

    def __init__(self, group, action, copies, trivial, size):
        super().__init__()
        self.group, self.action, self.copies, self.trivial = group, action, copies, trivial
        self.f = nn.Linear(size * size, copies)

    def forward(self, x):
        n = self.group.order
        views = [self.action(x, torch.full((len(x),), int(self.group.inverses[h]))) for h in range(n)]
        responses = torch.stack([self.f(v.flatten(1)) for v in views], dim=2)  # B × copies × |G|
        regular = responses.flatten(1)  # copy-major: block c holds (f_c(T(h⁻¹)x))_h
        invariant = responses.mean(2)[:, : self.trivial]
        return torch.cat([regular, invariant], 1)


def setup(group_name="D4", size=6, copies=3, trivial=2):
    group = group_from_name(group_name)
    action = image_action(group, size)
    encoder = OrbitEncoder(group, action, copies, trivial, size)
    d = copies * group.order + trivial
    model = EncoderHead(encoder, nn.Linear(d, 5), d)
    rep = latent_representation(group, d, copies=copies)
    latent_action = lambda z, g: apply_matrices(rep, g, z)  # noqa: E731
    x = torch.randn(16, 1, size, size)
    y = torch.randint(5, (16,))
    g = torch.randint(group.order, (16,))
    return model, action, latent_action, x, y, g
