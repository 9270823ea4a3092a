"""Experiments built on the stages: the demo (``python -m depthsense.demo``), sparse image
classification (``depthsense-classify``) and the recipe of the shipped model
(``python -m depthsense.pretrain``). Each module has its own ``main`` or run function;
nothing is re-exported here.
"""

__all__: list[str] = []
