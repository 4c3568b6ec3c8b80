"""Beat entry points of the audit chain (thin: they call audit.chain)."""

from celery import shared_task

from audit import chain


@shared_task(name="audit.seal_chain")
def seal_chain() -> int:
    return chain.seal_pending()


@shared_task(name="audit.write_chain_digest")
def write_chain_digest() -> None:
    chain.write_digest()
