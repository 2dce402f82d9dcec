"""What the HTTP front door runs on: the daemon's catalog and scheduler, and servicers over them.

The daemon hands over `HttpServices` -- the same `Catalog` and `Scheduler`
objects its gRPC listeners use -- and the HTTP handlers call servicers built
over them in-process (see `ingot.daemon.http.calls`), so a request follows
one code path whichever door it came in by.
"""

from __future__ import annotations

from dataclasses import dataclass

from ingot.daemon.catalog import Catalog
from ingot.daemon.monitoring import Monitoring
from ingot.daemon.scheduler import Scheduler
from ingot.daemon.servicers import InferenceServicer, ModelsServicer, RuntimeServicer
from ingot.registry.home import IngotHome
from ingot.modelfile.template import DEFAULT_BUDGET, RenderBudget

__all__ = ["HttpServices", "Servicers"]


@dataclass(frozen=True)
class HttpServices:
    catalog: Catalog
    scheduler: Scheduler
    default_registry: str | None = None  # $INGOT_REGISTRY, for pull/push of names without a host
    # The daemon's metrics and device readings (Daemon.monitoring); None: a registry of this app's own.
    monitoring: Monitoring | None = None
    home: IngotHome | None = None  # the watcher's status on the web page; /v1/files and /v1/batches state (no such routes without)
    # The home may not be written (a read-only store: an image volume, a read-only PVC): no /v1/files, /v1/batches.
    read_only: bool = False
    template_budget: RenderBudget = DEFAULT_BUDGET  # config.yaml's templates:


@dataclass(frozen=True)
class Servicers:
    inference: InferenceServicer
    models: ModelsServicer
    runtime: RuntimeServicer
    catalog: Catalog
    scheduler: Scheduler

    @classmethod
    def over(cls, services: HttpServices, monitoring: Monitoring, *, api: str) -> Servicers:
        """Servicers for one API family: `api` labels the requests they count ("openai", "ollama")."""
        return cls(
            inference=InferenceServicer(
                catalog=services.catalog,
                scheduler=services.scheduler,
                metrics=monitoring.requests,
                api=api,
                template_budget=services.template_budget,
            ),
            models=ModelsServicer(
                catalog=services.catalog,
                scheduler=services.scheduler,
                default_registry=services.default_registry,
                template_budget=services.template_budget,
            ),
            runtime=RuntimeServicer(
                catalog=services.catalog, scheduler=services.scheduler, home=services.home, rates=monitoring.rates
            ),
            catalog=services.catalog,
            scheduler=services.scheduler,
        )
