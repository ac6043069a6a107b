"""The service's micro-batching, on its own: which requests share a batch."""

import asyncio
from collections.abc import Callable

from pipeline.serving.batcher import LabelingFailed, MicroBatcher


def batches_of(arrivals: list[float], window_s: float, max_texts: int = 100) -> list[list[str]]:
    """The batches a MicroBatcher labels for one-text requests arriving at these times (s)."""
    batches: list[list[str]] = []

    def label(texts: list[str]) -> list[dict]:
        batches.append(list(texts))
        return [{"text": text} for text in texts]

    async def scenario() -> None:
        batcher = MicroBatcher(label, window_s, max_texts)
        task = asyncio.create_task(batcher.run())

        async def client(i: int, at: float) -> None:
            await asyncio.sleep(at)
            assert await batcher.submit([f"t{i}"]) == [{"text": f"t{i}"}]

        await asyncio.gather(*(client(i, at) for i, at in enumerate(arrivals)))
        task.cancel()

    asyncio.run(scenario())
    return batches


def test_a_batch_stays_open_while_requests_keep_arriving():
    # four requests 0.3 s apart, each within the 0.4 s window after the one before (so a batch
    # that closed one window after its first request would hold two), then a lone one after a
    # quiet spell: one batch of four, and the lone one labeled by itself
    assert batches_of([0, 0.3, 0.6, 0.9, 3.0], window_s=0.4) == [
        ["t0", "t1", "t2", "t3"],
        ["t4"],
    ]


def test_a_batch_closes_at_max_texts():
    assert batches_of([0, 0.01, 0.02, 0.03], window_s=0.2, max_texts=2) == [
        ["t0", "t1"],
        ["t2", "t3"],
    ]


def answers_of(label: Callable[[list[str]], list[dict]], requests: list[list[str]]) -> list:
    """Each request's answer (its results, or the exception) when all arrive at once."""

    async def scenario() -> list:
        batcher = MicroBatcher(label, 0.05, 1000)
        task = asyncio.create_task(batcher.run())
        answers = await asyncio.gather(
            *(batcher.submit(texts, f"r{i}") for i, texts in enumerate(requests)),
            return_exceptions=True,
        )
        task.cancel()
        return answers

    return asyncio.run(scenario())


def test_a_failing_batch_is_split_until_only_the_failing_requests_fail(caplog):
    calls: list[list[str]] = []

    def label(texts: list[str]) -> list[dict]:  # fails for any batch that holds "bad"
        calls.append(list(texts))
        if "bad" in texts:
            raise RuntimeError("bad")
        return [{"text": text} for text in texts]

    requests = [[f"t{i}", "bad"] if i in (3, 11) else [f"t{i}"] for i in range(16)]
    answers = answers_of(label, requests)
    for i, (texts, answer) in enumerate(zip(requests, answers, strict=True)):
        if i in (3, 11):
            assert isinstance(answer, LabelingFailed)
        else:
            assert answer == [{"text": text} for text in texts]
    assert len(calls[0]) == 18 and len(calls) < 16  # one batch first, then halves, not one by one
    failed = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(failed) == 2 and failed[0].startswith("request r3 failed: RuntimeError")
    assert not any("t3" in r.getMessage() or "'bad'" in r.getMessage() for r in caplog.records)


def test_a_label_function_that_returns_too_few_rows_fails_only_its_request():
    def label(texts: list[str]) -> list[dict]:
        return [{"text": text} for text in texts if text != "lost"]

    good, lost = answers_of(label, [["a"], ["lost"]])
    assert good == [{"text": "a"}] and isinstance(lost, LabelingFailed)
