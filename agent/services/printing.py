"""Receipt and label printing: pick slips on order arrival, receipts, labels, the print command.

Every job is rendered to ESC/POS bytes once and journaled (table print_jobs) before
anything is sent, then printed by one worker per printer, oldest first. A job is marked
done (`print.done`, in the same transaction) only when its printer confirmed it (see
agent/devices/printer.py); until then it is retried: after the paper is back, after the
printer came back, after the agent restarted. A printer that disappears for a moment
gets the same job again, not a new one; an order's pick slip is a once-only job (keyed
by the order id), so an order updated ten times prints one slip.

What stops a printer is reported once per episode as `printer.error` {printer, error,
job}: paper_out, cover_open, cutter_error, error, offline, unconfirmed (it answers, but
never confirmed the job: a model without GS r wants `confirm: received`; after
UNCONFIRMED_LIMIT sends the job counts as printed, `print.done` with `confirmed: false`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agent.config.schema import PrintingConfig
from agent.devices.base import DeviceError, DeviceEvent, DeviceOffline, DeviceOnline
from agent.devices.printer import Printer, PrinterNotReady, PrinterOffline, Unconfirmed
from agent.devices.protocols.escpos import EscPosError, PrinterStatus
from agent.journal import FinishPrintJob, JournalError, PutPrintJob
from agent.journal.errors import CONFLICT
from agent.model.commands import BAD_ARGS, Caller, CommandError, Handler, arg
from agent.model.ids import new_ulid
from agent.printing import templates
from agent.services.base import StoreContext, StoreService

log = logging.getLogger(__name__)

STOP_WAIT_S = 3.0  # a job being printed at stop may finish (else it is sent again next run)
KINDS = ("text", "order", "receipt", "label")
# Sends of one job that the printer, though answering, never confirmed (GS r): after this
# many it is taken as printed (`print.done` with `confirmed: false`) rather than sent on.
UNCONFIRMED_LIMIT = 3


@dataclass(slots=True)
class Job:
    id: str
    printer: str
    kind: str
    ref: str | None
    payload: bytes
    attempts: int = 0
    unconfirmed: int = 0  # sends the printer answered around but never confirmed


class PrintingService(StoreService):
    name = "printing"

    def __init__(
        self, ctx: StoreContext, cfg: PrintingConfig, printers: Mapping[str, Printer]
    ) -> None:
        self.ctx = ctx
        self.cfg = cfg
        self.printers = dict(printers)
        self.queue: dict[str, list[Job]] = {p: [] for p in self.printers}
        self._keys: set[str] = set()  # once-only jobs ever queued
        self._errors: dict[str, str | None] = {p: None for p in self.printers}
        self._wake = {p: asyncio.Event() for p in self.printers}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._loaded = asyncio.Event()
        self._stopping = False
        self._printing: dict[str, Job | None] = {p: None for p in self.printers}

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        saved = await self.ctx.journal.print_queue()
        self._keys = set(saved.keys)
        for row in saved.queued:
            if row.printer not in self.queue:
                log.error(
                    "print job %s is for printer %r, which is no longer configured; it waits "
                    "until that printer is back in the config",
                    row.id,
                    row.printer,
                )
                continue
            self.queue[row.printer].append(Job(row.id, row.printer, row.kind, row.ref, row.payload))
        if saved.queued:
            log.info("%d print job(s) from before the restart still to print", len(saved.queued))
        self._loaded.set()
        for pid, dev in self.printers.items():
            dev.status_listeners.append(self._status_listener(pid))
            self._workers[pid] = asyncio.create_task(self._work(pid), name=f"print {pid}")
        self.ctx.state_changed()

    async def stop(self) -> None:
        self._stopping = True
        for event in self._wake.values():
            event.set()
        workers, self._workers = list(self._workers.values()), {}
        if workers:
            _, pending = await asyncio.wait(workers, timeout=STOP_WAIT_S)
            for task in pending:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
        for dev in self.printers.values():
            dev.status_listeners.clear()

    # --- what others see ----------------------------------------------------------------

    def commands(self) -> Mapping[str, Handler]:
        return {"print": self._print_command}

    def state(self) -> dict[str, Any]:
        printers = {}
        for pid, dev in self.printers.items():
            st = dev.status
            printers[pid] = {
                "online": dev.online,
                "paper_out": bool(st and st.paper_out),
                "paper_near_end": bool(st and st.paper_near_end),
                "cover_open": bool(st and st.cover_open),
                "error": self._errors[pid],
                "queued": len(self.queue[pid]),
            }
        return {"printers": printers}

    def on_device_event(self, ev: DeviceEvent) -> bool:
        match ev:
            case DeviceOnline(device) if device in self.printers:
                self._wake[device].set()
                self.ctx.state_changed()
            case DeviceOffline(device) if device in self.printers:
                if self.queue[device]:
                    self._report(device, "offline", self.queue[device][0].id)
                self.ctx.state_changed()
        return False

    async def on_orders(self, orders: Sequence[Mapping[str, Any]]) -> None:
        await self._loaded.wait()
        printer = self.cfg.pick_slips
        if not self.cfg.auto_pick_slip or printer is None or printer not in self.printers:
            return
        for order in orders:
            if order.get("status") != "pending":
                continue
            key = f"pick_slip:{order['id']}"
            if key in self._keys:
                continue
            self._keys.add(key)  # before any await: a second upsert cannot slip in
            try:
                payload = self._pick_slip(order, printer)
                await self._enqueue(printer, "pick_slip", payload, key=key, ref=order["id"])
            except (EscPosError, ValueError) as exc:
                log.error("no pick slip for order %s: %s", order["id"], exc)
            except JournalError as exc:
                if exc.code != CONFLICT:
                    self._keys.discard(key)
                    log.error("could not queue the pick slip of order %s: %s", order["id"], exc)

    # --- the print command --------------------------------------------------------------

    async def _print_command(self, args: dict[str, Any], caller: Caller) -> dict[str, Any]:
        given = [k for k in KINDS if k in args]
        if len(given) != 1:
            raise CommandError(BAD_ARGS, "give exactly one of: text, order, receipt, label")
        kind = given[0]
        default = {
            "text": self.cfg.receipts,
            "order": self.cfg.pick_slips,
            "receipt": self.cfg.receipts,
            "label": self.cfg.labels,
        }[kind]
        printer = arg(args, "printer", str, required=False) or default
        if printer is None:
            raise CommandError(BAD_ARGS, f"no printer given, and the config names none for {kind}")
        if printer not in self.printers:
            known = ", ".join(self.printers) or "none"
            raise CommandError(BAD_ARGS, f"no printer {printer!r} (printers: {known})")
        try:
            payload, ref = self._render(kind, args, printer)
        except EscPosError as exc:
            raise CommandError(BAD_ARGS, str(exc)) from exc
        job = await self._enqueue(
            printer, "pick_slip" if kind == "order" else kind, payload, ref=ref
        )
        log.info("print job %s (%s) queued on %s by %s", job.id, kind, printer, caller.sub)
        return {"job": job.id, "printer": printer, "queued": len(self.queue[printer])}

    def _render(self, kind: str, args: dict[str, Any], printer: str) -> tuple[bytes, str | None]:
        width = self.printers[printer].cfg.paper_chars
        if kind == "text":
            body = arg(args, "text", str)
            if not body.strip():
                raise CommandError(BAD_ARGS, "text is empty")
            return templates.text(body), None
        if kind == "order":
            order_id = arg(args, "order", str)
            order = self.ctx.orders.by_id.get(order_id)
            if order is None:
                raise CommandError(BAD_ARGS, f"no order {order_id!r} in this store")
            return self._pick_slip(order, printer), order_id
        if kind == "receipt":
            sale = arg(args, "receipt", dict)
            data = templates.receipt(
                sale,
                store_name=self.ctx.cfg.store.name,
                timezone=self.ctx.cfg.store.timezone,
                now=self.ctx.clock.now(),
                width=width,
            )
            return data, str(sale["sale"]) if sale.get("sale") else None
        spec = arg(args, "label", dict)
        barcode = arg(spec, "barcode", str)
        name = arg(spec, "name", str)
        price = arg(spec, "price", (int, float))
        return templates.label(barcode, name, float(price), width=width), barcode

    def _pick_slip(self, order: Mapping[str, Any], printer: str) -> bytes:
        return templates.pick_slip(
            order,
            catalog=self.ctx.catalog,
            store_name=self.ctx.cfg.store.name,
            timezone=self.ctx.cfg.store.timezone,
            now=self.ctx.clock.now(),
            width=self.printers[printer].cfg.paper_chars,
            qr_module=self.cfg.qr_module_dots,
        )

    # --- the queue ----------------------------------------------------------------------

    async def _enqueue(
        self,
        printer: str,
        kind: str,
        payload: bytes,
        *,
        key: str | None = None,
        ref: str | None = None,
    ) -> Job:
        job = Job(new_ulid(int(self.ctx.clock.now() * 1000)), printer, kind, ref, payload)
        await self.ctx.journal.apply([PutPrintJob(job.id, printer, kind, payload, key, ref)])
        self.queue[printer].append(job)
        self._wake[printer].set()
        self.ctx.state_changed()
        return job

    async def _work(self, pid: str) -> None:
        dev = self.printers[pid]
        while not self._stopping:
            if not self.queue[pid]:
                await self._pause(pid, None)
                continue
            job = self.queue[pid][0]
            self._printing[pid] = job
            try:
                await dev.print_job(job.payload, on_wait=self._waiting_on(pid, job))
            except PrinterNotReady as exc:
                self._report(pid, exc.status.problem, job.id)
                await self._pause(pid, self.cfg.retry_seconds)
                continue
            except PrinterOffline as exc:
                log.info("%s: job %s waits: %s", pid, job.id, exc)
                self._report(pid, "offline", job.id)
                await self._pause(pid, self.cfg.retry_seconds)
                continue
            except Unconfirmed as exc:
                job.attempts += 1
                job.unconfirmed += 1
                self._report(pid, "unconfirmed", job.id)
                if job.unconfirmed >= UNCONFIRMED_LIMIT:
                    # A printer that answers but never confirms printed it every time: a
                    # model without GS r. Sending again would only waste paper.
                    log.error("%s: job %s: %s; not sent again", pid, job.id, exc)
                    await self._done(pid, job, confirmed=False)
                else:
                    log.warning("%s: job %s sent but not confirmed: %s", pid, job.id, exc)
                    await self._pause(pid, self.cfg.retry_seconds)
                continue
            except DeviceError as exc:
                job.attempts += 1  # sent, maybe printed in part: it goes again, whole
                log.warning("%s: job %s sent but not confirmed: %s", pid, job.id, exc)
                self._report(
                    pid, "unconfirmed" if isinstance(exc, Unconfirmed) else "offline", job.id
                )
                await self._pause(pid, self.cfg.retry_seconds)
                continue
            finally:
                self._printing[pid] = None
            job.attempts += 1
            await self._done(pid, job)

    async def _pause(self, pid: str, seconds: float | None) -> None:
        event = self._wake[pid]
        if self._stopping:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), seconds)
        event.clear()

    async def _done(self, pid: str, job: Job, *, confirmed: bool = True) -> None:
        self.queue[pid].remove(job)
        if confirmed:
            self._errors[pid] = None
        data: dict[str, Any] = {"printer": pid, "job": job.id, "kind": job.kind, "ref": job.ref}
        data["attempts"] = job.attempts
        if not confirmed:
            data["confirmed"] = False
        try:
            await self.ctx.journal.append("print.done", data, ops=[FinishPrintJob(job.id)])
        except JournalError as exc:
            # Printed, but not on disk as printed: it would print again after a restart.
            log.error("%s: job %s printed but could not be marked done: %s", pid, job.id, exc)
        log.info("%s: printed job %s (%s) after %d attempt(s)", pid, job.id, job.kind, job.attempts)
        self.ctx.state_changed()

    # --- printer trouble ----------------------------------------------------------------

    def _status_listener(self, pid: str) -> Any:
        def changed(status: PrinterStatus | None) -> None:
            if status is not None:
                if status.ready:
                    self._errors[pid] = None
                    self._wake[pid].set()
                else:
                    head = self._printing[pid] or (self.queue[pid][0] if self.queue[pid] else None)
                    self._report(pid, status.problem, head.id if head else None)
            self.ctx.state_changed()

        return changed

    def _waiting_on(self, pid: str, job: Job) -> Callable[[PrinterStatus], None]:
        """What the driver calls while the printer keeps this job waiting."""
        return lambda status: self._report(pid, status.problem, job.id)

    def _report(self, pid: str, error: str | None, job: str | None) -> None:
        """One `printer.error` per episode (until the printer prints or is ready again)."""
        if error is None or self._errors[pid] == error:
            return
        self._errors[pid] = error
        log.warning("%s: %s (job %s)", pid, error, job)
        self.ctx.spawn(
            self._append("printer.error", {"printer": pid, "error": error, "job": job}),
            inflight=True,
        )
        self.ctx.state_changed()

    async def _append(self, type_: str, data: dict[str, Any]) -> None:
        try:
            await self.ctx.journal.append(type_, data)
        except JournalError as exc:
            log.error("could not journal %s: %s", type_, exc)


def build(ctx: StoreContext) -> list[StoreService]:
    cfg = ctx.cfg.printing
    if cfg is None:
        return []
    printers = {d: dev for d, dev in ctx.devices.items() if isinstance(dev, Printer)}
    if not printers:
        return []
    return [PrintingService(ctx, cfg, printers)]
