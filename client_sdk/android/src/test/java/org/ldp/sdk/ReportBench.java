package org.ldp.sdk;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import java.io.File;
import java.nio.file.Files;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import java.util.function.IntConsumer;
import org.ldp.sdk.client.Client;
import org.ldp.sdk.client.DeviceStore;
import org.ldp.sdk.client.FileJournalStore;
import org.ldp.sdk.client.JdbcStore;
import org.ldp.sdk.client.Transport;
import org.ldp.sdk.mechanisms.FrequencyOracle;
import org.ldp.sdk.mechanisms.Mechanisms;

/**
 * {@code report()} latency of the Android/JVM SDK (bench/bench_android.py runs it and writes
 * bench/results/android.json): config cached, no network; each call timed on its own.
 * Prints one JSON object.
 */
public final class ReportBench {
  private ReportBench() {}

  static final String OUE_CONFIG = "{\"version\":2,\"kind\":\"frequency\",\"mechanism\":{\"mechanism\":\"oue\",\"epsilon\":1.0,\"domain_size\":128},"
      + "\"epsilon\":1.0,\"neighbouring\":\"record\",\"epoch\":{\"seconds\":86400,\"start\":\"2020-01-01T00:00:00Z\",\"grace\":1},"
      + "\"release\":{\"windows\":[1],\"cumulative\":true,\"min_reports\":100},\"budget\":{\"cap_lifetime\":1000000.0,\"cap_per_window\":null,"
      + "\"window_epochs\":1,\"memoized\":false,\"epsilon_per_memo\":null}}";
  static final String PEM_CONFIG = "{\"version\":2,\"kind\":\"heavy_hitters\",\"mechanism\":%s,\"epsilon\":4.0,\"neighbouring\":\"record\","
      + "\"epoch\":{\"seconds\":86400,\"start\":\"2020-01-01T00:00:00Z\",\"grace\":1},\"release\":{\"windows\":[1],\"cumulative\":false,\"min_reports\":100},"
      + "\"budget\":{\"cap_lifetime\":1000000.0,\"cap_per_window\":null,\"window_epochs\":1,\"memoized\":false,\"epsilon_per_memo\":null}}";

  static final String LONGITUDINAL_CONFIG = "{\"version\":2,\"kind\":\"longitudinal\",\"mechanism\":%s,\"epsilon\":2.0,\"neighbouring\":\"record\","
      + "\"epoch\":{\"seconds\":86400,\"start\":\"2020-01-01T00:00:00Z\",\"grace\":1},\"release\":{\"windows\":[1],\"cumulative\":false,\"min_reports\":100},"
      + "\"budget\":{\"cap_lifetime\":1000000.0,\"cap_per_window\":null,\"window_epochs\":1,\"memoized\":true,\"epsilon_per_memo\":null}}";

  static String longitudinal(String mechanism) {
    return String.format(LONGITUDINAL_CONFIG, Json.canonical(org.ldp.sdk.longitudinal.Longitudinal.fromConfig(Json.parse(mechanism)).config()));
  }

  static Transport serving(Map<String, String> configs) {
    return (method, url, headers, body, timeout) -> {
      String id = url.substring(url.lastIndexOf('/') + 1);
      String text = configs.get(id);
      String hash = Json.configHash(Json.parse(text));
      return new Transport.Response(200, new HashMap<>(), "{\"id\":\"" + id + "\",\"config\":" + text + ",\"config_hash\":\"" + hash + "\"}");
    };
  }

  static JsonObject time(String name, int n, IntConsumer call) {
    for (int i = 0; i < Math.min(200, n); i++) call.accept(i);
    long[] ns = new long[n];
    long started = System.nanoTime();
    for (int i = 0; i < n; i++) {
      long t = System.nanoTime();
      call.accept(i);
      ns[i] = System.nanoTime() - t;
    }
    double total = (System.nanoTime() - started) / 1e9;
    Arrays.sort(ns);
    return Json.obj("case", name, "calls", n, "p50_ms", ns[n / 2] / 1e6, "p90_ms", ns[(int) (n * 0.9)] / 1e6, "p99_ms", ns[(int) (n * 0.99)] / 1e6,
        "calls_per_s", n / total);
  }

  public static void main(String[] args) throws Exception {
    int n = Integer.parseInt(args[0]);
    File tmp = Files.createTempDirectory("ldp-bench").toFile();
    Map<String, String> configs = new HashMap<>();
    configs.put("oue", OUE_CONFIG);
    JsonObject pem = Json.obj("protocol", "pem", "epsilon", 4.0, "k", 16, "domain", Json.obj("type", "string", "max_bytes", 8), "eta", 4);
    configs.put("pem", String.format(PEM_CONFIG, Json.canonical(org.ldp.sdk.heavy.HeavyHitters.fromConfig(pem).config())));
    configs.put("losue", longitudinal("{\"kind\":\"longitudinal\",\"mechanism\":\"l-osue\",\"epsilon_perm\":2.0,\"epsilon_first\":1.0,\"domain_size\":128}"));
    configs.put("lgrr", longitudinal("{\"kind\":\"longitudinal\",\"mechanism\":\"l-grr\",\"epsilon_perm\":2.0,\"epsilon_first\":1.0,\"domain_size\":1048576}"));
    JsonArray cases = new JsonArray();
    FrequencyOracle oue = Mechanisms.create("oue", 1.0, 128);
    cases.add(time("OUE k=128: perturb only (no storage)", n, i -> oue.perturb(i % 128)));
    String[][] stores = {{"file journal, fsync", "file"}, {"file journal, no fsync", "file-nofsync"}, {"SQLite (sqlite-jdbc), synchronous=FULL", "jdbc"}};
    for (String[] s : stores) {
      DeviceStore store;
      File dir = new File(tmp, s[1]);
      if (s[1].equals("jdbc")) {
        try {
          Class.forName("org.sqlite.JDBC");
        } catch (ClassNotFoundException e) {
          continue;
        }
        dir.mkdirs();
        store = new JdbcStore("jdbc:sqlite:" + new File(dir, "device.sqlite3").getPath());
      } else {
        store = new FileJournalStore(dir, !s[1].endsWith("nofsync"));
      }
      try (Client c = Client.builder("http://bench", "key").store(store).transport(serving(configs)).build()) {
        c.config("oue");
        cases.add(time("OUE k=128: report(), " + s[0], n, i -> c.report("oue", i % 128)));
        if (s[1].equals("file")) {
          c.config("pem");
          cases.add(time("PEM (string items, 8 bytes): report(), " + s[0], n, i -> c.report("pem", "item" + (i % 50))));
        }
        if (!s[1].equals("file-nofsync")) {
          // memoized: a value whose memo is held (round 2 only, no charge), and a new value each call (a new memo, charged)
          c.config("losue");
          c.report("losue", 5);
          cases.add(time("L-OSUE k=128, memoized: report() of a held value (memo reused), " + s[0], n, i -> c.report("losue", 5)));
          c.config("lgrr");
          cases.add(time("L-GRR k=2^20, memoized: report() of a new value (new memo), " + s[0], n, i -> c.report("lgrr", i)));
        }
      }
    }
    System.out.println(Json.write(Json.obj("cases", cases, "java", System.getProperty("java.version"), "vm", System.getProperty("java.vm.name"))));
  }
}
