"""The calibrated kind's strategy names, as literals: ``mlbench.catalog`` reads them from
this file without importing torch (``tests/test_calibrated_kind.py`` checks they are the
kind's)."""

UNSTRUCTURED_NAMES = ("pt_magnitude", "wanda", "sparsegpt")
NM_NAMES = (
    "pt_magnitude_2_4", "wanda_2_4", "sparsegpt_2_4",
    "pt_magnitude_4_8", "wanda_4_8", "sparsegpt_4_8",
)
UNIT_NAMES = ("remove_heads", "remove_neurons")  # whole heads and MLP neurons removed
STRATEGY_NAMES = UNSTRUCTURED_NAMES + NM_NAMES + UNIT_NAMES
