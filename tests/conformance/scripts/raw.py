"""@rawhttp with AMLRequest/AMLResponse, the way published samples use them."""
import json

from azureml.contrib.services.aml_request import AMLRequest, rawhttp
from azureml.contrib.services.aml_response import AMLResponse


def init():
    pass


@rawhttp
def run(request):
    if request.method == "GET":
        return {"args": request.args.to_dict(), "method": request.method}
    if request.method == "OPTIONS":
        raise RuntimeError("OPTIONS reaches run()")
    mode = request.args.get("mode", "")
    if mode == "files":
        files = request.files.getlist("file")
        if not files:
            return AMLResponse("No file uploaded", status_code=422)
        return {"names": [f.filename for f in files], "sizes": [len(f.read()) for f in files],
                "form": request.form.to_dict()}
    if mode == "image":
        resp = AMLResponse(b"\x89PNG\r\n\x1a\nfake", 200)
        resp.mimetype = "image/png"
        return resp
    if mode == "json":
        return AMLResponse({"ok": True}, 201, {"X-Extra": "a,b"}, json_str=True)
    if mode == "none":
        return AMLResponse(None, 200)
    if mode == "fail":
        return AMLResponse("bad", 500)
    if mode == "flagged":
        return AMLResponse("flagged", 200, run_function_failed=True)
    if mode == "echo":
        return {"data": request.get_data(False).decode(), "json": request.get_json(silent=True),
                "ctype": request.headers.get("Content-Type")}
    return AMLResponse(request.get_data(), 200, {"Content-Type": "application/octet-stream"})
