"""Weight and spectral normalisation with the *old* state-dict names the official checkpoints use.

The official code applies ``torch.nn.utils.weight_norm`` (keys ``weight_g``/``weight_v``) and
``torch.nn.utils.spectral_norm`` (``weight_orig``/``weight_u``/``weight_v``). The newer parametrisation
API renames those keys, which would break loading the published checkpoint, so we keep the hook-based
API and silence its deprecation notice here, in one place.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import nn


def weight_norm(module: nn.Module) -> nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return nn.utils.weight_norm(module)


def spectral_norm(module: nn.Module, warm_start_iterations: int = 30) -> nn.Module:
    """Spectral norm whose ``u``/``v`` start converged.

    Torch starts ``u``/``v`` as random vectors and refines them by one power iteration per training
    forward; in eval mode they are used as stored. A freshly built model evaluated straight away would
    divide by a random, possibly tiny, ``uᵀWv`` and blow up, so we run the power method to convergence
    now. Loaded checkpoints overwrite ``u``/``v`` anyway.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        module = nn.utils.spectral_norm(module)
    with torch.no_grad():
        w = module.weight_orig.reshape(module.weight_orig.shape[0], -1)
        u, v = module.weight_u, module.weight_v
        for _ in range(warm_start_iterations):
            v.copy_(F.normalize(w.t() @ u, dim=0, eps=1e-12))
            u.copy_(F.normalize(w @ v, dim=0, eps=1e-12))
    return module
