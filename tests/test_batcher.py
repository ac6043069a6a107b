"""The service's micro-batching, on its own: which texts share a batch, and in what turns."""

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from pipeline.serving.batcher import LabelingFailed, MicroBatcher


def batches_of(arrivals: list[float], window_s: float, budget: int = 100) -> list[list[str]]:
    """The batches a MicroBatcher labels for one-text requests arriving at these times (s)."""
    batches: list[list[str]] = []

    def label(texts: list[str]) -> list[dict]:
        batches.append(list(texts))
        return [{"text": text} for text in texts]

    async def scenario() -> None:
        batcher = MicroBatcher(label, window_s, budget)
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


def test_a_batch_closes_at_its_budget():
    assert batches_of([0, 0.01, 0.02, 0.03], window_s=0.2, budget=2) == [
        ["t0", "t1"],
        ["t2", "t3"],
    ]


def answers_of(
    label: Callable[[list[str]], list[dict]], requests: list[list[str]], budget: int = 1000
) -> list:
    """Each request's answer (its results, or the exception) when all arrive at once."""

    async def scenario() -> list:
        batcher = MicroBatcher(label, 0.05, budget)
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


def test_requests_take_turns_so_a_small_one_waits_for_one_batch_of_a_big_one():
    calls: list[list[str]] = []
    running = threading.Event()  # the big request's first batch is being labeled
    go_on = threading.Event()

    def label(texts: list[str]) -> list[dict]:
        calls.append(list(texts))
        running.set()
        go_on.wait(10)
        return [{"text": text} for text in texts]

    async def scenario() -> list[str]:
        batcher = MicroBatcher(label, 0.001, 2)
        task = asyncio.create_task(batcher.run())
        done: list[str] = []

        async def client(name: str, texts: list[str]) -> None:
            assert await batcher.submit(texts) == [{"text": text} for text in texts]
            done.append(name)

        big = asyncio.create_task(client("big", [f"b{i}" for i in range(6)]))
        await asyncio.to_thread(running.wait, 10)
        small = asyncio.create_task(client("small", ["s0"]))
        await asyncio.sleep(0.05)  # the small request queues while the big one's batch runs
        go_on.set()
        await asyncio.gather(big, small)
        task.cancel()
        return done

    assert asyncio.run(scenario()) == ["small", "big"]
    assert calls == [["b0", "b1"], ["b2", "s0"], ["b3", "b4"], ["b5"]]


def test_a_request_over_several_batches_fails_alone_and_is_labeled_no_further(caplog):
    calls: list[list[str]] = []

    def label(texts: list[str]) -> list[dict]:
        calls.append(list(texts))
        if "bad" in texts:
            raise RuntimeError("bad")
        return [{"text": text} for text in texts]

    bad = ["x0", "bad", "x2", "x3", "x4", "x5"]
    requests = [["a0", "a1", "a2"], bad, ["c0"]]
    a, failed, c = answers_of(label, requests, budget=3)
    assert a == [{"text": t} for t in requests[0]] and c == [{"text": "c0"}]
    assert isinstance(failed, LabelingFailed)
    assert calls[0] == ["a0", "x0", "c0"] and calls[1] == ["a1", "bad", "a2"]
    assert not any("x2" in texts for texts in calls)  # its texts after the failure: dropped
    assert [
        r.getMessage().split(" failed")[0] for r in caplog.records if r.levelname == "ERROR"
    ] == ["request r1"]


def test_two_batchers_share_one_model_thread_and_each_counts_its_own_cost():
    """The service's two batchers (/predict, /explain) label on one thread; /explain's texts cost
    more (their variants), so its batches hold fewer."""
    calls: list[tuple[str, list[str]]] = []
    threads: set[int] = set()

    def labeler(name: str) -> Callable[[list[str]], list[dict]]:
        def label(texts: list[str]) -> list[dict]:
            threads.add(threading.get_ident())
            calls.append((name, list(texts)))
            return [{"text": text} for text in texts]

        return label

    async def scenario() -> list:
        with ThreadPoolExecutor(1) as model_thread:
            cheap = MicroBatcher(labeler("cheap"), 0.05, 4, model_thread)
            costly = MicroBatcher(labeler("costly"), 0.05, 4, model_thread, cost=len)
            tasks = [asyncio.create_task(batcher.run()) for batcher in (cheap, costly)]
            answers = await asyncio.gather(
                cheap.submit(["a", "b", "c", "d"]), costly.submit(["xx", "yy", "zzzz"])
            )
            for task in tasks:
                task.cancel()
        return answers

    cheap, costly = asyncio.run(scenario())
    assert [row["text"] for row in cheap + costly] == ["a", "b", "c", "d", "xx", "yy", "zzzz"]
    assert sorted(calls) == [
        ("cheap", ["a", "b", "c", "d"]), ("costly", ["xx", "yy"]), ("costly", ["zzzz"])
    ]  # fmt: skip
    assert len(threads) == 1 and threading.get_ident() not in threads
