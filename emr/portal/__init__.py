"""The patient portal: server-rendered pages under /patient/ where patients see their orders,
invoices, payments and refunds, pay a recovery invoice and change a subscription through the
same services staff use (templates in templates/portal/)."""
