"""Lambda entry point of the SQS consumers; QUEUE_PRIORITY (set by the template)
says which of the three queues this instance drains."""

import os

from amazon_pilot.platform.consumer import make_consumer_handler

handler = make_consumer_handler(os.environ.get("QUEUE_PRIORITY", "default"))
