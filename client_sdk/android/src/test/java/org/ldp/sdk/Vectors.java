package org.ldp.sdk;

import com.google.gson.JsonObject;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;

/** The shared vectors of tests/vectors (generated from the Python SDK by tests/vectors/generate.py). */
final class Vectors {
  private Vectors() {}

  static Path dir() {
    String configured = System.getProperty("ldp.vectors");
    return Paths.get(configured != null ? configured : "../../tests/vectors");
  }

  static JsonObject load(String name) {
    try {
      return Json.parse(new String(Files.readAllBytes(dir().resolve(name)), StandardCharsets.UTF_8)).getAsJsonObject();
    } catch (IOException e) {
      throw new IllegalStateException("cannot read vectors " + name + " (set -Dldp.vectors)", e);
    }
  }

  /** Distance in units in the last place between two doubles of the same sign. */
  static long ulps(double a, double b) {
    return Math.abs(Double.doubleToLongBits(a) - Double.doubleToLongBits(b));
  }
}
