package org.ldp.sdk.client;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;
import org.ldp.sdk.Json;

/** An in-process fake of the wire contract (docs/api.md): config, dedupe by report_id, epoch rule, 413, 503. */
final class FakeServer implements Transport {
  final AtomicLong clockMicros;
  final Map<String, String> configTexts = new HashMap<>();
  final Map<String, String> hashes = new HashMap<>();
  final Map<String, Long> startMicros = new HashMap<>();
  final Map<String, Long> seconds = new HashMap<>();
  /** report_id -> the report's JSON text (accepted) */
  final Map<String, String> accepted = new LinkedHashMap<>();
  final List<Integer> batchSizes = Collections.synchronizedList(new ArrayList<>());
  int maxBatch = Integer.MAX_VALUE;
  /** answer the next N POSTs with this status (and Retry-After if set) */
  int failNext;
  int failStatus = 503;
  String retryAfter;
  /** process the next N POSTs but lose the answer */
  int loseAnswers;
  /** refuse this report id with this reason */
  final Map<String, String> refuse = new HashMap<>();
  int requests;
  long grace = 1;
  /** device enrolment (POST /v1/devices): client_id -> secret of the enrolled devices */
  final Map<String, String> devices = new LinkedHashMap<>();
  boolean requireDevices;
  /** client_id of every accepted report */
  final List<String> acceptedFor = new ArrayList<>();
  int enrolments;
  /** the last upload body, as sent */
  String lastBody;

  FakeServer(AtomicLong clockMicros) {
    this.clockMicros = clockMicros;
  }

  void addCollection(String id, String text) {
    JsonObject config = Json.parse(text).getAsJsonObject();
    configTexts.put(id, text);
    hashes.put(id, Json.configHash(config));
    startMicros.put(id, CollectionConfig.parseTimestampMicros(config.getAsJsonObject("epoch").get("start")));
    seconds.put(id, config.getAsJsonObject("epoch").get("seconds").getAsLong());
  }

  static String frequencyConfig(String mechanism, double capLifetime, Double capWindow) {
    return "{\"version\":2,\"kind\":\"frequency\",\"mechanism\":{\"mechanism\":\"" + mechanism + "\",\"epsilon\":1.0,\"domain_size\":16},"
        + "\"epsilon\":1.0,\"neighbouring\":\"record\",\"epoch\":{\"seconds\":3600,\"start\":\"2030-01-01T00:00:00Z\",\"grace\":1},"
        + "\"release\":{\"windows\":[1],\"cumulative\":true,\"min_reports\":100},\"budget\":{\"cap_lifetime\":" + capLifetime
        + ",\"cap_per_window\":" + (capWindow == null ? "null" : capWindow.toString()) + ",\"window_epochs\":1,\"memoized\":false,\"epsilon_per_memo\":null}}";
  }

  static Response json(int status, String body) {
    Map<String, String> h = new HashMap<>();
    h.put("content-type", "application/json");
    return new Response(status, h, body);
  }

  @Override
  public synchronized Response send(String method, String url, Map<String, String> headers, String body, int timeoutMillis) throws IOException {
    requests++;
    String path = url.replaceFirst("^https?://[^/]+", "");
    String[] parts = path.split("/");
    if (method.equals("POST") && parts[2].equals("devices")) {
      enrolments++;
      String clientId = String.format("%032x", 0xd0000L + enrolments);
      String secret = String.format("%043d", enrolments).replace('0', 'S');
      devices.put(clientId, secret);
      return json(201, "{\"devices\":[{\"client_id\":\"" + clientId + "\",\"device_secret\":\"" + secret + "\"}]}");
    }
    String id = parts[3];
    if (method.equals("GET")) {
      if (!configTexts.containsKey(id)) return json(404, "{\"title\":\"Not found\",\"detail\":\"no collection\"}");
      return json(200, "{\"id\":\"" + id + "\",\"config\":" + configTexts.get(id) + ",\"config_hash\":\"" + hashes.get(id) + "\"}");
    }
    if (failNext > 0) {
      failNext--;
      Response r = json(failStatus, "{\"title\":\"Unavailable\",\"detail\":\"busy\"}");
      if (retryAfter != null) r.headers.put("retry-after", retryAfter);
      return r;
    }
    JsonObject document = Json.parse(body).getAsJsonObject();
    lastBody = body;
    JsonElement wire = document.get("wire");
    if (!(wire != null && Json.isInt(wire) && wire.getAsInt() == 2)) { // a version 1 body is refused whole
      return json(400, "{\"title\":\"Unsupported wire version\",\"detail\":\"wire " + wire + "\"}");
    }
    JsonArray reports = document.getAsJsonArray("reports");
    JsonObject proof = document.has("devices") ? document.getAsJsonObject("devices") : new JsonObject();
    batchSizes.add(reports.size());
    if (reports.size() > maxBatch) return json(413, "{\"title\":\"Too many reports\"}");
    JsonArray results = new JsonArray();
    long current = Math.floorDiv(clockMicros.get() - startMicros.get(id), seconds.get(id) * 1_000_000L);
    for (JsonElement e : reports) {
      JsonObject r = e.getAsJsonObject();
      String rid = r.get("report_id").getAsString();
      long epoch = r.get("epoch").getAsLong();
      String text = Json.canonical(r);
      String status = "accepted";
      String reason = null;
      String device = r.get("client_id").getAsString();
      boolean proven = proof.has(device) && proof.get(device).getAsString().equals(devices.get(device));
      if (requireDevices && !proven) {
        status = "rejected";
        reason = "device_unauthenticated";
      } else if (!r.get("config_hash").getAsString().equals(hashes.get(id))) {
        status = "rejected";
        reason = "config_mismatch";
      } else if (refuse.containsKey(rid)) {
        status = "rejected";
        reason = refuse.get(rid);
      } else if (accepted.containsKey(rid)) {
        status = accepted.get(rid).equals(text) ? "duplicate" : "rejected";
        reason = status.equals("rejected") ? "report_id_conflict" : null;
      } else if (epoch > current) {
        status = "rejected";
        reason = "epoch_in_future";
      } else if (epoch < current - grace) {
        status = "rejected";
        reason = "epoch_too_old";
      } else {
        accepted.put(rid, text);
        acceptedFor.add(device);
      }
      results.add(Json.obj("report_id", rid, "status", status, "reason", reason, "detail", reason == null ? null : "fake: " + reason));
    }
    if (loseAnswers > 0) {
      loseAnswers--;
      throw new IOException("connection reset (the fake lost the answer)");
    }
    return json(200, Json.write(Json.obj("results", results)));
  }
}
