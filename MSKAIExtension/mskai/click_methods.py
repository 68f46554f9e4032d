"""Names of the click segmentation methods, and the default.

Plain constants with no imports, so the command line, the web state and the Slicer module can
name a method without loading the segmentation code.
"""

CLASSIC = "classic"   # region competition, no model (mskai.interactive.segment)
LEARNED = "learned"   # the click network from the first click (mskai.interactive.learned)
AUTO = "auto"         # classic or the network by the tumour's size (auto_method.py)
METHODS = (CLASSIC, LEARNED, AUTO)
# The default wherever a method is not given: "auto" beats "classic" in mean Dice after 1, 2,
# 3 and 5 clicks on CT and on T1 MR in the patient-level 5-fold cross-validation
# (training/tumor/cv_results.json; Testing/test_tumor_cv.py checks this follows the file).
DEFAULT_METHOD = AUTO
