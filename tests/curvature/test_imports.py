"""The curvature pass does not load peft: its import alone holds about 200 MB (transformers with it).

The smoke recipe's KFAC stage must fit in 2 GB (1.83 GB measured with this; 2.11 GB with peft loaded),
and a base model holds no LoRA layer, so nothing on this path needs peft.
"""

from __future__ import annotations

import subprocess
import sys


def test_curvature_path_does_not_import_peft():
    code = (
        "import sys\n"
        "import tts_adapt.curvature, tts_adapt.cli.curvature, tts_adapt.curvature.objectives\n"
        "from tts_adapt.adapters import named_layers, effective_weight\n"
        "loaded = sorted(m for m in ('peft', 'transformers') if m in sys.modules)\n"
        "print(','.join(loaded))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"imported: {out.stdout.strip()}"


def test_adapters_names_still_resolve():
    import tts_adapt.adapters as adapters

    for name in adapters.__all__:
        assert getattr(adapters, name) is not None, name
    try:
        adapters.no_such_name  # noqa: B018
    except AttributeError as err:
        assert "no_such_name" in str(err)
    else:
        raise AssertionError("an unknown name must raise AttributeError")
