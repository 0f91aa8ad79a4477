"""`taiwa eval`: judgement measured on labelled posts taiwa was never trained or tuned on.

- brand.py: a brand's own labelled set run through the whole pipeline in two phases (the Nami Ramen set, and the
  Kirara Denki and Umi no Mori Aquarium sets written in new domains and voices, mostly Japanese);
- real.py: real posts to airlines, Apple, a festival and more, labelled by reading before any model read them;
- outcomes.py: what a post got (an apology, another reply, a like, "needs a look", nothing) and the figures
  that judge it (apologies to posts with no problem, complaints drafted, likes for praise, …).
"""

from .brand import EVAL_DIR, EvalReport, load_set, measure, run

__all__ = ["EVAL_DIR", "EvalReport", "load_set", "measure", "run"]
