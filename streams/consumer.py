"""Faust's aiokafka consumer, made safe against records that were fetched before a seek.

faust-streaming 0.15.3 hands records to its streams from a batch fetched earlier, while a rebalance's
recovery seeks the same partitions back to their committed offsets. Such a stale record (fetched at the
old position) then reaches the stream *after* the seek: Faust records its offset as read, counts the
offsets between the committed one and it as a gap it may commit, and silently drops every record of the
re-read that comes after (``DROPPED MESSAGE ROFF``) — they are never processed, and their offsets end up
committed (faust-streaming#221, robinhood/faust#115). The pipeline lost tens of records per takeover
this way: a takeover test failed about every other run.

The fix keeps Faust's design and adds one fact it lacks — *which fetch a record came from*:

* every position change of a partition in aiokafka (``Fetcher.seek_to``, called by ``seek`` and
  ``seek_to_committed``) bumps a per-partition counter, and a new assignment brings new partition
  states; the pair (partition state, seek count) is the partition's **fetch token**;
* each fetched batch is stamped, in the consumer's own thread and without yielding to its loop, with
  the tokens its records were fetched under;
* a record whose token is no longer current is stale. Faust's delivery loop is replaced by a copy
  (:meth:`SeekSafeConsumer._drain_messages`) that drops a stale record right before its read-offset
  check, with no await between the two, and does not let a delivery that straddled a seek move the
  read offset that seek set; a record already handed over when the seek came (in a stream's queue)
  is skipped by the agents (:func:`is_fresh`) and its acknowledgement is ignored, so it never
  advances a commit. A stale record is always read again: the seek moved the position back to, or
  before, it.
* only offsets delivered under a partition's current token count towards its commit
  (:meth:`SeekSafeConsumer._new_offset`): Faust's compiled stream loop acknowledges records it skips
  inline, past :meth:`SeekSafeConsumer.ack`;
* a seek back to the committed offsets also sends each partition without a commit back to its
  beginning: Faust discards records fetched while its flow is stopped, and only a seek reads them
  again;
* the position never passes a record that was not delivered: Faust's ``getmany`` drops the rest of a
  batch when its flow stops or the generation changes, and the records of a partition paused since
  the fetch; the copy here (:meth:`SeekSafeConsumer.getmany`) seeks such a partition back to its
  first dropped record;
* from the moment Faust's recovery resumes the stream partitions until its seek to the committed
  offsets is done, nothing is delivered: records fetched in between would come ahead of the re-read.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any, cast

from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread, Consumer, Transport
from faust.types import TP, Message
from mode import Service

_log = logging.getLogger("burnguard.streams")
#: (aiokafka's state object of the partition, number of seeks of the partition)
Token = tuple[object, int]
_TOKEN_ATTR = "burnguard_fetch_token"
#: the token of a record whose partition had none at fetch time (not assigned): always stale
_NO_TOKEN = object()


class TokenedRecords(dict[Any, Any]):
    """A fetched record batch and the fetch token of each of its partitions at fetch time."""

    def __init__(self, records: Mapping[Any, Any], tokens: dict[Any, Token | None]) -> None:
        super().__init__(records)
        self.tokens = tokens


class SeekCountingConsumerThread(AIOKafkaConsumerThread):
    """The consumer thread, counting each partition's seeks and stamping fetched batches."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seeks: dict[Any, int] = {}

    async def on_start(self) -> None:
        await super().on_start()
        fetcher = self._ensure_consumer()._fetcher
        seek_to = fetcher.seek_to

        def counted_seek_to(tp: Any, offset: int) -> None:
            seek_to(tp, offset)
            self.seeks[tp] = self.seeks.get(tp, 0) + 1

        fetcher.seek_to = counted_seek_to

    def token(self, tp: Any) -> Token | None:
        """The partition's current fetch token; None when it is not assigned."""
        consumer = self._consumer
        if consumer is None or consumer._fetcher is None:
            return None
        subscription = consumer._fetcher._subscriptions.subscription
        assignment = subscription.assignment if subscription is not None else None
        state = assignment.state_value(tp) if assignment is not None else None
        return None if state is None else (state, self.seeks.get(tp, 0))

    async def _fetch_records(
        self,
        consumer: Any,
        active_partitions: Any,
        timeout: float | None = None,
        max_records: int | None = None,
    ) -> Any:
        records = await super()._fetch_records(consumer, active_partitions, timeout=timeout, max_records=max_records)
        # no await between the fetch and this line: the tokens are those the records were fetched under
        return TokenedRecords(records, {tp: self.token(tp) for tp in records})


class SeekSafeConsumer(Consumer):
    """Faust's aiokafka consumer that never delivers, nor counts as acknowledged, a stale record."""

    _thread: SeekCountingConsumerThread

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: stale records: not delivered / delivered, then skipped by an agent / acknowledgements ignored
        self.stale_dropped = 0
        self.stale_skipped = 0
        self.stale_acks = 0
        #: partitions sought back to records fetched but dropped before delivery (Faust's getmany)
        self.partitions_sought_back = 0
        #: per partition, the fetch token of the latest delivery and the offsets delivered under it
        self._delivered: dict[TP, tuple[Token, set[int]]] = {}
        #: closed from the resumption of stream partitions to the end of the seek that follows it
        self._seek_gate = asyncio.Event()
        self._seek_gate.set()

    def _new_consumer_thread(self) -> SeekCountingConsumerThread:
        return SeekCountingConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, Message]]:
        """Faust's ``getmany`` (faust/transport/consumer.py, 0.15.3), stamping each message with its
        fetch token, and never leaving a fetched record behind: Faust silently drops the rest of a
        batch when its flow stops or the generation changes mid-batch, and the records of a partition
        paused since the fetch, while aiokafka's position has moved past them. Such a partition is
        sought back to its first dropped record, so it is read again, in order."""
        records, active_partitions = await self._wait_next_records(timeout)
        generation_id = self.app.consumer_generation_id
        if records is None or self.should_stop:
            return
        tokens = getattr(records, "tokens", {})
        if not self.flow_active:
            # Faust's own answer: all of them are read again from the committed offsets
            try:
                await self.perform_seek()
            except Exception as exc:
                _log.warning("seek after a batch fetched while the flow was stopped failed: %r", exc)
            return
        dropped: dict[TP, int] = {}
        to_message = self._to_message
        for tp, record in self.scheduler.iterate(records):
            if (
                tp in dropped
                or not self.flow_active
                or self.app.consumer_generation_id != generation_id
                or not (active_partitions is None or tp in active_partitions or tp in self._buffered_partitions)
            ):
                dropped[tp] = min(dropped.get(tp, record.offset), record.offset)
                continue
            self.app.monitor.track_tp_end_offset(tp, self.highwater(tp))
            message = to_message(tp, record)
            token = tokens.get(tp)
            setattr(message, _TOKEN_ATTR, _NO_TOKEN if token is None else token)
            yield tp, message
        if dropped:
            await self._seek_back(dropped)

    async def _seek_back(self, dropped: Mapping[TP, int]) -> None:
        assigned = self.assignment()
        back = {tp: offset for tp, offset in dropped.items() if tp in assigned}
        if not back:
            return  # revoked: the next owner reads them from the committed offset
        self.partitions_sought_back += len(back)
        try:
            await self.seek_wait(back)
        except Exception as exc:  # a rebalance took them meanwhile: its seek reads them again
            _log.info("seek back to records fetched but not delivered failed: %r", exc)

    def resume_partitions(self, tps: Any) -> None:
        """Faust's recovery resumes the stream partitions, then seeks them to their committed offsets
        (:meth:`perform_seek`), with awaits in between: records fetched meanwhile, from the position
        the rebalance left, would be delivered ahead of the ones the seek reads again (out of order,
        and a source's event time would leap ahead). Delivery waits until the seek is done."""
        if any(not self._is_changelog_tp(tp) for tp in tps):
            self._seek_gate.clear()
        super().resume_partitions(tps)

    async def perform_seek(self) -> None:
        """Seek to the committed offsets, and each partition the group never committed back to its
        beginning (where ``auto_offset_reset=earliest`` starts a new member). Faust only seeks the
        committed ones, so records it discards while its flow is stopped (during a rebalance) were
        lost for a partition without a commit yet: the first records of a fresh topic."""
        try:
            await self._seek_to_committed()
        finally:
            self._seek_gate.set()

    async def _seek_to_committed(self) -> None:
        await super().perform_seek()
        acked_topics = self.app.topics.acks_enabled_for
        uncommitted = [
            tp
            for tp in self.assignment()
            if self._committed_offset.get(tp) is None and not self._is_changelog_tp(tp) and acked_topics(tp.topic)
        ]
        if uncommitted:
            # in the consumer's thread (seek_wait), like every other seek: a seek from this thread could
            # land between a fetch and the stamping of its tokens, and pass stale records as fresh
            await self.seek_wait(await self.earliest_offsets(*uncommitted))

    def _new_offset(self, tp: TP) -> int | None:
        """Faust's next commit offset of ``tp``, counting only acknowledgements of records delivered
        under the partition's current fetch token. Faust's compiled stream loop acknowledges inline,
        past :meth:`ack` — a record it skips after a rebalance, or one an agent skips as stale — so
        an offset could otherwise be committed before its re-read copy was processed."""
        acked = self._acked[tp]
        if acked:
            token = self._thread.token(tp)
            entry = self._delivered.get(tp)
            good = entry[1] if entry is not None and token is not None and entry[0] == token else set()
            if any(o not in good for o in acked):
                index = self._acked_index[tp]
                for o in [o for o in acked if o not in good]:
                    index.discard(o)
                acked[:] = [o for o in acked if o in good]
        new = cast("int | None", super()._new_offset(tp))
        entry = self._delivered.get(tp)
        if new is not None and entry is not None:
            entry[1].difference_update([o for o in entry[1] if o < new])
        return new

    def stuck_commits(self) -> list[str]:
        """Partitions whose commit cannot advance: acknowledged records wait behind one that never was."""
        stuck = []
        for tp, acked in list(self._acked.items()):
            committed = self._committed_offset.get(tp)
            if acked and committed is not None and min(acked) - committed > 1:
                entry = self._delivered.get(tp)
                token = self._thread.token(tp)
                missing = range(committed, min(acked))
                delivered = [o for o in missing if entry is not None and o in entry[1]]
                stuck.append(
                    f"{tp.topic}:{tp.partition} committed {committed}, acknowledged from {min(acked)} "
                    f"({len(acked)} waiting), read to {self._read_offset.get(tp)}; of the {len(missing)} "
                    f"between, {len(delivered)} delivered under the current fetch token "
                    f"({'same' if entry is not None and entry[0] == token else 'other'} token)"
                )
        return stuck

    async def _wait_for_seek(self) -> None:
        try:
            await asyncio.wait_for(self._seek_gate.wait(), self.app.conf.broker_request_timeout)
        except TimeoutError:  # a seek that never came: deliver rather than stall the worker
            self._seek_gate.set()
            _log.warning("stream partitions resumed, but no seek to the committed offsets followed")

    async def _seek(self, partition: TP, offset: int) -> None:
        await self.seek_wait({partition: offset})  # in the consumer's thread, as above

    def is_stale(self, message: Message) -> bool:
        """Whether ``message`` was fetched before its partition's last seek or reassignment."""
        token = getattr(message, _TOKEN_ATTR, None)
        return token is not None and (token is _NO_TOKEN or token != self._thread.token(message.tp))

    def ack(self, message: Message) -> bool:
        if self.is_stale(message):
            # never counted: the offset must not be committed before the re-read copy is processed
            message.acked = True
            self._unacked_messages.discard(message)
            self.stale_acks += 1
            return False
        return cast(bool, super().ack(message))

    async def _drain_messages(self, fetcher: Any) -> None:  # pragma: no cover - runs in every worker
        """Faust's own loop (faust/transport/consumer.py, 0.15.3) with three changes: a stale record is
        dropped right before the read-offset check, with no await between the two (so a seek that
        completes while the loop waits cannot slip in); a record below the read offset is delivered
        (only a stale one can be, or a re-read that raced Faust's reset of the read offset); and a
        delivery that straddled a seek does not move the read offset the seek set."""
        callback = self.callback
        getmany = self.getmany
        consumer_should_stop = cast(Service, self)._stopped.is_set
        fetcher_should_stop = cast(Service, fetcher)._stopped.is_set
        read_offset = self._read_offset
        commit_every = self._commit_every
        acks_enabled_for = self.app.topics.acks_enabled_for
        since_yield = 0
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                self.diag.set_flag(CONSUMER_FETCHING)
                ait = getmany(timeout=1.0)
                await self.sleep(0)  # getmany can return at once, in a loop: let others run
                if self.should_stop:
                    continue
                async for tp, message in ait:
                    since_yield += 1
                    if since_yield > 100:
                        await asyncio.sleep(0)
                        since_yield = 0
                    if commit_every is not None and self._n_acked >= commit_every:
                        self._n_acked = 0
                        await self.commit()
                    if not self._seek_gate.is_set():
                        await self._wait_for_seek()
                    if self.is_stale(message):  # no await from here to the read-offset check
                        self.stale_dropped += 1
                        continue
                    # Faust drops here a record below the read offset ("DROPPED MESSAGE ROFF"): a guard
                    # against the stale records above, which also dropped the re-read after a seek that
                    # landed before Faust reset the read offset (it does so after the seek returns)
                    offset = message.offset
                    r_offset = read_offset[tp]
                    if r_offset and offset - r_offset > 1 and acks_enabled_for(message.topic):
                        await self._add_gap(tp, r_offset + 1, offset)  # offsets the log does not have
                    token = getattr(message, _TOKEN_ATTR)
                    entry = self._delivered.get(tp)
                    if entry is None or entry[0] != token:
                        self._delivered[tp] = entry = (token, set())
                    entry[1].add(offset)
                    await self.wait_first(callback(message), self.suspend_flow.wait())
                    if not self.is_stale(message):
                        read_offset[tp] = offset
                self.diag.unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            self.diag.unset_flag(CONSUMER_FETCHING)


class SeekSafeTransport(Transport):
    """The aiokafka transport with :class:`SeekSafeConsumer`."""

    Consumer = SeekSafeConsumer


def install(app: Any) -> None:
    """Give ``app`` the seek-safe consumer; call before anything touches ``app.transport``."""
    app.transport = SeekSafeTransport(app.conf.broker_consumer, app)


def is_fresh(app: Any, message: Message) -> bool:
    """False for a record delivered before its partition was sought back: it is read again."""
    consumer = app.consumer
    if isinstance(consumer, SeekSafeConsumer) and consumer.is_stale(message):
        consumer.stale_skipped += 1
        message.acked = True  # so that no acknowledgement, not even Faust's inline one, counts it
        return False
    return True


__all__ = ["SeekSafeConsumer", "SeekSafeTransport", "install", "is_fresh"]
