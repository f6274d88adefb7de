"""Attack algorithms, each a seeded function of (model, images, labels, budget) that returns the best
adversarial images it found per sample: PGD, APGD, Square, FAB-T and the worst-case cascade.

They know nothing of stages, suites or runs (``typobench.stages`` wraps them); they take their device and
dtype from the images and never change the model. ``common`` holds what they share.
"""
