"""The failed-check message of CartilageQuant, worded for where it is shown.

The command line names its options (``--refine-ras``, ``--labels``); the Slicer module and
the web page name their own tools and never a command-line option (issue 14, left-alone
item: a Slicer user cannot type ``--refine-ras``).
"""

from __future__ import annotations

import numpy as np
import pytest

from mskai.segments import Provenance, Result
from mskai.volume import Volume

FAILED = {"structure": "tibia", "check": "order", "passed": False,
          "problem": "it lies above the femur"}


def _result(model_id: str | None = "knee_unet_test") -> Result:
    provenance = Provenance(method="AI segmentation", model_id=model_id)
    result = Result("CartilageQuant", Volume(np.zeros((2, 2, 2), np.int16)), provenance)
    result.measurements["checks"] = [FAILED, dict(FAILED, structure="tibial_cartilage")]
    return result


def test_cli_message_names_the_cli_options():
    from mskai.tasks.cartilage import check_failure

    message = check_failure(_result())
    assert message.startswith("the knee model's tibia failed the anatomical checks: it lies "
                              "above the femur; 1 more structure failed (tibial_cartilage;")
    assert "--refine-ras tibia=R,A,S" in message and "--labels" in message
    assert "--label-names" not in message


@pytest.mark.parametrize(("surface", "tool"), [("slicer", "Re-measure now"),
                                               ("web", "Re-measure edits")])
def test_module_messages_name_the_module_tools_and_no_cli_option(surface, tool):
    from mskai.tasks.cartilage import FIX_HINTS, check_failure

    assert surface in FIX_HINTS
    message = check_failure(_result(), surface)
    assert message.startswith("the knee model's tibia failed the anatomical checks")
    assert "correct tibia with" in message and tool in message
    assert "--" not in message


def test_given_labels_never_fail_this_way():
    from mskai.tasks.cartilage import check_failure

    assert check_failure(_result(model_id=None), "slicer") is None


def test_slicer_job_and_web_job_use_their_own_wording():
    import inspect

    from mskai.tasks import cartilage_jobs
    from mskai.web import jobs

    assert "check_failure(result, SURFACE_SLICER)" in inspect.getsource(
        cartilage_jobs.measure_cartilage)
    assert "check_failure(result, SURFACE_WEB)" in inspect.getsource(jobs.measure_knee)
