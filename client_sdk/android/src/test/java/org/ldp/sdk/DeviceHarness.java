package org.ldp.sdk;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import org.ldp.sdk.client.BudgetStatus;
import org.ldp.sdk.client.Client;
import org.ldp.sdk.client.DeviceBudgetExceededException;
import org.ldp.sdk.client.FlushResult;
import org.ldp.sdk.client.ReportReceipt;

/**
 * A JVM device process for the end-to-end system test (tests/system/test_android_sdk_live.py):
 *
 * <pre>
 * simulate URL KEY PLAN.json      every device of the plan: its own state dir, its reports, one flush
 * report URL KEY DIR CID VALUE    one report (exit 3: refused by the device budget)
 * report-and-hang URL KEY DIR CID N VALUE   N reports, print "queued", then wait to be killed
 * flush URL KEY DIR               one flush; prints the result as JSON
 * (DIR ending in ".sqlite3": the SQLite store through sqlite-jdbc instead of the file journal)
 * budget URL KEY DIR CID          the device's ledger as JSON
 * </pre>
 *
 * Values are JSON: an integer (frequency, longitudinal), a list (multidim), {"item": ...} (heavy hitters).
 * With the environment variable LDP_TEST_CLOCK_FILE the device reads the live test server's
 * clock file (Unix seconds; empty: real time), so a test can move both through epochs.
 */
public final class DeviceHarness {
  private DeviceHarness() {}

  static Object value(JsonElement v) {
    if (v.isJsonArray()) {
      JsonArray a = v.getAsJsonArray();
      int[] out = new int[a.size()];
      for (int i = 0; i < out.length; i++) out[i] = a.get(i).getAsInt();
      return out;
    }
    if (v.isJsonObject()) {
      JsonElement item = v.getAsJsonObject().get("item");
      return Json.isString(item) ? item.getAsString() : item.getAsLong();
    }
    return v.getAsLong();
  }

  /** The test server's clock file (tests/system/test_client_harness.py's FileClock), else real time. */
  static org.ldp.sdk.client.Clock clock() {
    String path = System.getenv("LDP_TEST_CLOCK_FILE");
    if (path == null || path.isEmpty()) return org.ldp.sdk.client.Clock.SYSTEM;
    return () -> {
      try {
        String text = new String(Files.readAllBytes(Paths.get(path)), StandardCharsets.UTF_8).trim();
        if (!text.isEmpty()) return Math.round(Double.parseDouble(text) * 1e6);
      } catch (java.io.IOException e) {
        // no file: real time
      }
      return org.ldp.sdk.client.Clock.SYSTEM.nowMicros();
    };
  }

  static Client open(String url, String key, String dir) {
    if (dir.endsWith(".sqlite3")) return Client.builder(url, key).clock(clock()).store(new org.ldp.sdk.client.JdbcStore("jdbc:sqlite:" + dir)).build();
    return Client.builder(url, key).clock(clock()).stateDir(new File(dir)).build();
  }

  static JsonObject result(FlushResult r) {
    return Json.obj("accepted", r.accepted, "duplicates", r.duplicates, "rejected", r.rejected, "deferred", r.deferred, "remaining", r.remaining,
        "errors", r.errors.toString());
  }

  public static void main(String[] args) throws Exception {
    String command = args[0];
    String url = args[1];
    String key = args[2];
    switch (command) {
      case "simulate": {
        JsonArray plan = Json.parse(new String(Files.readAllBytes(Paths.get(args[3])), StandardCharsets.UTF_8)).getAsJsonArray();
        int accepted = 0;
        int refused = 0;
        int remaining = 0;
        long units = 0;
        int newMemos = 0;
        for (JsonElement d : plan) {
          JsonObject device = d.getAsJsonObject();
          try (Client c = open(url, key, device.get("dir").getAsString())) {
            for (JsonElement r : device.getAsJsonArray("reports")) {
              JsonArray pair = r.getAsJsonArray();
              try {
                ReportReceipt receipt = c.report(pair.get(0).getAsString(), value(pair.get(1)));
                units += receipt.units;
                newMemos += receipt.newMemo ? 1 : 0;
              } catch (DeviceBudgetExceededException e) {
                refused++;
              }
            }
            FlushResult f = c.flush(60);
            accepted += f.accepted + f.duplicates;
            remaining += f.remaining;
          }
        }
        System.out.println(Json.write(Json.obj("devices", plan.size(), "delivered", accepted, "refused", refused, "remaining", remaining, "units", units,
            "new_memos", newMemos)));
        break;
      }
      case "report": {
        try (Client c = open(url, key, args[3])) {
          ReportReceipt r = c.report(args[4], value(Json.parse(args[5])));
          System.out.println(Json.write(Json.obj("report_id", r.reportId, "epoch", r.epoch, "epsilon", r.epsilonCharged, "client_id", c.clientId())));
        } catch (DeviceBudgetExceededException e) {
          System.out.println(Json.write(Json.obj("refused", e.getMessage(), "scope", e.scope)));
          System.exit(3);
        }
        break;
      }
      case "report-and-hang": {
        Client c = open(url, key, args[3]);
        int n = Integer.parseInt(args[5]);
        Object v = value(Json.parse(args[6]));
        for (int i = 0; i < n; i++) c.report(args[4], v);
        System.out.println(Json.write(Json.obj("queued", n, "client_id", c.clientId())));
        System.out.flush();
        Thread.sleep(Long.MAX_VALUE); // killed here, between report and flush
        break;
      }
      case "flush": {
        try (Client c = open(url, key, args[3])) {
          JsonObject out = result(c.flush(60));
          out.addProperty("client_id", c.clientId()); // with enrolment: the server's, known once a flush enrolled
          System.out.println(Json.write(out));
        }
        break;
      }
      case "budget": {
        try (Client c = open(url, key, args[3])) {
          BudgetStatus b = c.budget(args[4]);
          System.out.println(Json.write(Json.obj("spent", b.spentLifetime, "cap", b.capLifetime, "acknowledged", b.acknowledged, "pending", b.pending,
              "reports", b.reports, "accepted", b.reportsAccepted, "duplicates", b.reportsDuplicate, "client_id", c.clientId(), "unit", b.unit,
              "units", b.unitsLifetime, "memo_count", b.memoCount)));
        }
        break;
      }
      default:
        System.err.println("unknown command " + command);
        System.exit(2);
    }
  }
}
