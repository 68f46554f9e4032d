"""Synthetic images with known truth that shipped code needs (no ``Testing`` import).

``mskai demo`` renders a fractured long bone (:mod:`long_bone`, built on :mod:`grid` and
:mod:`intensity`) and a synthetic knee MR (:mod:`knee_anatomy`, :mod:`knee_mr`); the
training scripts use :mod:`simulated_fracture` and the knee synthesis
(:mod:`knee_mr`; SynthSeg-style random-contrast patches: :mod:`synth_knee`). The test suite's
``phantoms`` package re-exports these modules and adds test-only phantoms.
"""
