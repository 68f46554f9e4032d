"""Slicer-side helpers shared by the MSK AI modules (settings panel, dependencies, logic base).

Nothing is imported here, so ``import MSKAILib`` stays free at Slicer start-up.
"""
