"""Defenses: changes to the model under test that aim to undo typographic attacks.

A defense is part of the model under test (``--defense SPEC`` on ``typobench run``, ``[defense]`` in a
suite): ``ablate`` (units of the image tower), ``prompt`` (zero-shot templates, a text or learned prefix),
``interpolate`` (PAINT weight interpolation), ``input`` (blur, downscale, JPEG with BPDA through a differentiable
JPEG, random resize-and-pad and random JPEG quality for EOT), ``project`` (the image embedding times a learned
projection that removes spelling). ``greedy`` chooses units for ``ablate`` under a clean budget. Specs are parsed by
``registry.create_defense``; ``build.build_defended`` composes them into a :class:`DefendedClassifier`, which
takes [0,1] pixels like every classifier, so attacks differentiate through it (adaptive by default).
``sanity.sanity_flags`` computes AutoAttack-style signs of gradient masking.
"""

from typobench.defenses.base import BuildContext, Defense, ImageRequest, Prompts
from typobench.defenses.build import Defended, build_defended, defense_fingerprint, zeroshot_head
from typobench.defenses.classifier import DefendedClassifier
from typobench.defenses.registry import DEFENSES, create_defense, list_defenses, parse_defenses
from typobench.defenses.sanity import sanity_flags

__all__ = ["BuildContext", "DEFENSES", "Defended", "DefendedClassifier", "Defense", "ImageRequest", "Prompts",
           "build_defended", "create_defense", "defense_fingerprint", "list_defenses", "parse_defenses", "sanity_flags", "zeroshot_head"]
