package org.ldp.sdk.client;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.HttpURLConnection;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/** The default transport: {@link HttpURLConnection} (Android API 1+; no java.net.http). */
public final class HttpUrlConnectionTransport implements Transport {
  @Override
  public Response send(String method, String url, Map<String, String> headers, String body, int timeoutMillis) throws IOException {
    HttpURLConnection c = (HttpURLConnection) new URL(url).openConnection();
    try {
      c.setRequestMethod(method);
      c.setConnectTimeout(timeoutMillis);
      c.setReadTimeout(timeoutMillis);
      c.setUseCaches(false);
      c.setInstanceFollowRedirects(false);
      for (Map.Entry<String, String> h : headers.entrySet()) c.setRequestProperty(h.getKey(), h.getValue());
      if (body != null) {
        byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
        c.setDoOutput(true);
        c.setFixedLengthStreamingMode(bytes.length);
        try (OutputStream out = c.getOutputStream()) {
          out.write(bytes);
        }
      }
      int status = c.getResponseCode();
      Map<String, String> out = new HashMap<>();
      for (Map.Entry<String, List<String>> h : c.getHeaderFields().entrySet()) {
        if (h.getKey() != null && !h.getValue().isEmpty()) out.put(h.getKey().toLowerCase(Locale.ROOT), h.getValue().get(0));
      }
      InputStream in = status >= 400 ? c.getErrorStream() : c.getInputStream();
      String text = "";
      if (in != null) {
        try (InputStream stream = in) {
          ByteArrayOutputStream buffer = new ByteArrayOutputStream();
          byte[] chunk = new byte[8192];
          for (int n; (n = stream.read(chunk)) != -1; ) buffer.write(chunk, 0, n);
          text = new String(buffer.toByteArray(), StandardCharsets.UTF_8);
        }
      }
      return new Response(status, out, text);
    } finally {
      c.disconnect();
    }
  }
}
