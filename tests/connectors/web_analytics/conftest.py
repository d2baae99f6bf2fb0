from tests.servers.paging_api import paging_api, paging_api_server  # noqa: F401
from tests.servers.s3 import s3_bucket, s3_server  # noqa: F401
