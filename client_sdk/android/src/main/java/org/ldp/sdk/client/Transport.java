package org.ldp.sdk.client;

import java.io.IOException;
import java.util.Map;

/** One HTTP exchange (injectable: the tests use an in-process fake of the wire contract). */
public interface Transport {
  /** A response: status, headers (lower-case names) and body text. */
  final class Response {
    public final int status;
    public final Map<String, String> headers;
    public final String body;

    public Response(int status, Map<String, String> headers, String body) {
      this.status = status;
      this.headers = headers;
      this.body = body;
    }

    public String header(String name) {
      return headers.get(name.toLowerCase(java.util.Locale.ROOT));
    }
  }

  /** Send one request; IOException for connection trouble and timeouts. */
  Response send(String method, String url, Map<String, String> headers, String body, int timeoutMillis) throws IOException;
}
