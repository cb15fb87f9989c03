"""The voice-pack experiment's goal check (``stock_goal_check``) on points worked out by hand.

The goal (issue text, docs/forgetting.md): at ≥ 95 % of plain LoRA's target similarity, LoRA + KFAC keeps
stock-voice retention ≥ 0.95 and a lower stock WER rise than plain LoRA and than diag; KFAC's curve
(retention, target similarity) dominates diag's and L2-SP's.
"""

from __future__ import annotations

from tts_adapt.forgetting.analysis import curve, stock_goal_check


def point(method, lam, target, retention, rise, size=1000):
    return {
        "method": method,
        "lambda": lam,
        "curvature_size": None if method in ("lora", "full", "lora+l2sp") else size,
        "target_sim": target,
        "stock_retention": retention,
        "stock_wer_rise": rise,
    }


LORA = point("lora", None, 0.86, 0.94, 0.010)


def test_met_when_kfac_keeps_the_voices_at_lora_like_similarity():
    points = [
        LORA,
        point("lora+kfac", 1e2, 0.85, 0.97, 0.002),  # 0.85 ≥ 0.95·0.86 = 0.817, 0.97 ≥ 0.95, 0.002 < both
        point("lora+kfac", 1e5, 0.80, 0.999, 0.0),  # too far from LoRA's target similarity
        point("lora+diag", 1e2, 0.84, 0.95, 0.004),  # the diag point at that similarity: rise 0.004
        point("lora+diag", 1e5, 0.80, 0.96, 0.0),  # below the similarity: its 0.0 rise does not count
        point("lora+l2sp", 1e2, 0.83, 0.96, 0.004),
    ]
    goal = stock_goal_check(points, 1000)
    p1 = goal["parts"]["kfac_at_lora_target"]
    assert abs(p1["target_needed"] - 0.817) < 1e-12
    assert p1["diag_best_wer_rise"] == 0.004 and p1["lambdas_meeting"] == [1e2]
    # KFAC (0.97, 0.85) beats diag (0.95, 0.84) and (0.96, 0.80) is beaten by (0.999, 0.80); same for L2-SP
    assert goal["parts"]["kfac_dominates_diag"]["met"] and goal["parts"]["kfac_dominates_l2sp"]["met"]
    assert goal["met"]


def test_each_failing_part_is_named():
    points = [
        LORA,
        point("lora+kfac", 1e2, 0.85, 0.97, 0.004),  # rise equal to diag's: not lower
        point("lora+kfac", 1e3, 0.84, 0.94, 0.0),  # retention below 0.95
        point("lora+diag", 1e2, 0.85, 0.98, 0.004),  # diag keeps more at the same similarity
    ]
    goal = stock_goal_check(points, 1000)
    cands = {c["lambda"]: c["checks"] for c in goal["parts"]["kfac_at_lora_target"]["kfac"]}
    assert cands[1e2] == {"target": True, "retention": True, "wer_below_lora": True, "wer_below_diag": False}
    assert cands[1e3]["retention"] is False and cands[1e3]["wer_below_diag"] is True
    assert not goal["parts"]["kfac_dominates_diag"]["met"]  # (0.98, 0.85) is beaten by no KFAC point
    assert goal["parts"]["kfac_dominates_l2sp"].get("why") == "needs both curves"
    assert not goal["met"]


def test_missing_runs_fail_with_a_reason_and_other_sizes_are_ignored():
    goal = stock_goal_check([LORA, point("lora+kfac", 1e2, 0.85, 0.97, 0.0, size=100)], 1000)
    assert goal["parts"]["kfac_at_lora_target"]["why"].startswith("needs plain LoRA and LoRA + KFAC")
    assert not goal["met"]
    pts = [point("lora+kfac", lam, 0.8, r, 0.0) for lam, r in ((1e3, 0.99), (1e1, 0.9))]
    assert curve(pts, "lora+kfac", 1000, x="stock_retention") == [(0.9, 0.8), (0.99, 0.8)]  # ordered by λ
