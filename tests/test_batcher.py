"""The service's micro-batching, on its own: which requests share a batch."""

import asyncio

from pipeline.serving.batcher import MicroBatcher


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
