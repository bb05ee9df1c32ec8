"""Lambda entry point of the SQS consumers; QUEUE_PRIORITY (set by the template)
says which of the three queues this instance drains."""

from amazon_pilot.platform.consumer import make_consumer_handler
from amazon_pilot.platform.settings import settings

handler = make_consumer_handler(settings().queue_priority)
