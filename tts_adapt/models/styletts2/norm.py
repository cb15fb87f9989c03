"""Weight and spectral normalisation with the *old* state-dict names the official checkpoints use.

The official code applies ``torch.nn.utils.weight_norm`` (keys ``weight_g``/``weight_v``) and
``torch.nn.utils.spectral_norm`` (``weight_orig``/``weight_u``/``weight_v``). The newer parametrisation
API renames those keys, which would break loading the published checkpoint, so we keep the hook-based
API and silence its deprecation notice here, in one place.
"""

from __future__ import annotations

import warnings

from torch import nn


def weight_norm(module: nn.Module) -> nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return nn.utils.weight_norm(module)


def spectral_norm(module: nn.Module) -> nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return nn.utils.spectral_norm(module)
