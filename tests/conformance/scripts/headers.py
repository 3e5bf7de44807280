"""run() with request_headers: returns the headers the script sees."""


def init():
    pass


def run(data, request_headers):
    keep = ("Content-Type", "X-Custom", "X-Ms-Request-Id", "Traceid", "Authorization")
    return {"data": data, "headers": {k: v for k, v in request_headers.items() if k in keep}}
