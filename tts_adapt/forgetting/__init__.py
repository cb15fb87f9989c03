"""The forgetting experiment: how much of the base model's pre-training fit survives an adaptation.

* ``objective``: the one place that names the pre-training objective (the held-out loss and the
  curvature must use the same one);
* ``loss``: the held-out pre-training loss of a model (deterministic), and the Laplace prior's
  prediction ``½·vec(ΔW)ᵀ H vec(ΔW)`` of its increase for each curvature;
* ``collect``: one row per adaptation run from the evaluation folder and the loss files;
* ``analysis``: Pareto dominance between methods, rank correlation of predicted vs real forgetting, the
  experiment's goal check;
* ``results``: the summary tables, figures and the results page.
"""
