"""moto_server with requests serialised.

moto handles each HTTP request on its own thread and does not make a conditional
TransactWriteItems atomic with respect to other requests, so parallel conditional transactions can
both pass their checks — something real DynamoDB never allows. The conformance and race tests
need DynamoDB's semantics, so this launcher runs the stock moto server with one lock around the
whole WSGI application: connections stay concurrent (keep-alive works), request handling is one
at a time.
"""
import threading

import moto.server as server

_lock = threading.Lock()
_Dispatcher = server.DomainDispatcherApplication


class SerialDispatcher(_Dispatcher):
    def __call__(self, environ, start_response):
        with _lock:
            # Materialise the body inside the lock so no handler code runs outside it.
            return list(super().__call__(environ, start_response))


server.DomainDispatcherApplication = SerialDispatcher

if __name__ == "__main__":
    server.main()
