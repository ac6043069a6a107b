"""int8 needs a torchao it was written against; otherwise a clear error, not a fallback."""

import pytest

from pipeline import PipelineError
from pipeline.fast.int8 import require_torchao


def test_a_verified_torchao_is_accepted():
    require_torchao("0.18.0")


@pytest.mark.parametrize(
    ("found", "message"),
    [(None, "torchao is not installed"), ("0.17.1", "found torchao 0.17.1"), ("0.19.0", "0.19")],
)
def test_int8_without_a_usable_torchao_is_a_clear_error(found, message):
    with pytest.raises(PipelineError, match=message) as error:
        require_torchao(found)
    assert "torchao>=0.18,<0.19" in str(error.value) and "fp32/bf16" in str(error.value)
