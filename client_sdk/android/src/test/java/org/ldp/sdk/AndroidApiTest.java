package org.ldp.sdk;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * The SDK's sources use no Java library API that Android added after API 24 (the language
 * level alone does not catch these: javac checks against the JDK's library). The denylist is
 * the Java 8 API Android shipped only at API 26 and the packages the SDK avoids by design.
 */
class AndroidApiTest {
  static final List<String> AFTER_API_24 = Arrays.asList("String.join(", "Long.compareUnsigned(", "Long.parseUnsignedLong(", "Long.toUnsignedString(",
      "Long.divideUnsigned(", "Long.remainderUnsigned(", "Integer.compareUnsigned(", "Integer.toUnsignedString(", "Integer.parseUnsignedInt(",
      "Integer.divideUnsigned(", "Integer.toUnsignedLong(", "Byte.toUnsignedInt(", "Short.toUnsignedInt(", "java.util.Base64", "java.time.",
      "java.nio.file.", "java.net.http");

  @Test
  void noLibraryApiNewerThanAndroid24() throws IOException {
    List<String> found = new ArrayList<>();
    int files = 0;
    try (Stream<Path> paths = Files.walk(Paths.get("src/main/java"))) {
      for (Path p : (Iterable<Path>) paths.filter(x -> x.toString().endsWith(".java"))::iterator) {
        files++;
        List<String> lines = Files.readAllLines(p, StandardCharsets.UTF_8);
        for (int i = 0; i < lines.size(); i++) {
          String code = lines.get(i).trim();
          if (code.startsWith("*") || code.startsWith("/*") || code.startsWith("//")) continue;
          int comment = code.indexOf("//");
          if (comment >= 0) code = code.substring(0, comment);
          for (String api : AFTER_API_24) if (code.contains(api)) found.add(p + ":" + (i + 1) + ": " + api);
        }
      }
    }
    assertTrue(files > 40, "sources found: " + files);
    assertEquals(new ArrayList<String>(), found);
  }

  @Test
  void compatMatchesTheJdk() {
    long[] xs = {0, 1, 2, 3, -1, -2, Long.MIN_VALUE, Long.MAX_VALUE, 0x8000000000000001L, 42, -42, 7L * 7 * 7 * 7 * 7 * 7 * 7 - 1,
        0xBF58476D1CE4E5B9L, 0x94D049BB133111EBL, 0x7FFFFFFFFFFFFFFEL};
    for (long a : xs) {
      for (long b : xs) {
        assertEquals(Integer.signum(Long.compareUnsigned(a, b)), Integer.signum(Compat.compareUnsigned(a, b)), a + " " + b);
        if (b != 0) assertEquals(Long.remainderUnsigned(a, b), Compat.remainderUnsigned(a, b), a + " % " + b);
      }
      assertThrows(ArithmeticException.class, () -> Compat.remainderUnsigned(a, 0));
      String hex = String.format("%016x", a);
      assertEquals(a, Compat.parseHex64(hex));
      assertEquals(a, Compat.parseHex64(hex.toUpperCase(java.util.Locale.ROOT)));
    }
    java.util.Random random = new java.util.Random(20261207);
    for (int i = 0; i < 100_000; i++) { // large and small divisors (the screen's p^d - 1 is below 2^22)
      long a = random.nextLong();
      long b = i % 2 == 0 ? random.nextLong() | 1 : 1 + random.nextInt(1 << 22);
      assertEquals(Long.remainderUnsigned(a, b), Compat.remainderUnsigned(a, b), a + " % " + b);
    }
    assertEquals("a, b, c", Compat.join(", ", Arrays.asList("a", "b", "c")));
    assertEquals("", Compat.join(", ", new ArrayList<String>()));
  }
}
