package org.ldp.sdk;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.google.gson.JsonPrimitive;
import org.junit.jupiter.api.Test;

/** RFC 8785 (JCS): the RFC's own number samples (Appendix B), key order and string escapes. */
class JcsTest {
  static final String[][] NUMBERS = {
    {"0000000000000000", "0"}, {"8000000000000000", "0"}, {"0000000000000001", "5e-324"}, {"8000000000000001", "-5e-324"},
    {"7fefffffffffffff", "1.7976931348623157e+308"}, {"ffefffffffffffff", "-1.7976931348623157e+308"},
    {"4340000000000000", "9007199254740992"}, {"c340000000000000", "-9007199254740992"}, {"4430000000000000", "295147905179352830000"},
    {"44b52d02c7e14af5", "9.999999999999997e+22"}, {"44b52d02c7e14af6", "1e+23"}, {"44b52d02c7e14af7", "1.0000000000000001e+23"},
    {"444b1ae4d6e2ef4e", "999999999999999700000"}, {"444b1ae4d6e2ef4f", "999999999999999900000"}, {"444b1ae4d6e2ef50", "1e+21"},
    {"3eb0c6f7a0b5ed8c", "9.999999999999997e-7"}, {"3eb0c6f7a0b5ed8d", "0.000001"}, {"41b3de4355555553", "333333333.3333332"},
    {"41b3de4355555554", "333333333.33333325"}, {"41b3de4355555555", "333333333.3333333"}, {"41b3de4355555556", "333333333.3333334"},
    {"41b3de4355555557", "333333333.33333343"}, {"becbf647612f3696", "-0.0000033333333333333333"}, {"43143ff3c1cb0959", "1424953923781206.2"},
  };

  @Test
  void numbersAsEcmaScriptWritesThem() {
    for (String[] c : NUMBERS) {
      double x = Double.longBitsToDouble(Long.parseUnsignedLong(c[0], 16));
      assertEquals(c[1], Jcs.ecmaNumber(x), c[0]);
      assertEquals(c[1], Jcs.canonical(new JsonPrimitive(x)), c[0]);
    }
    assertEquals("1", Jcs.canonical(Json.parse("1.0")));
    assertEquals("1e-7", Jcs.canonical(Json.parse("1e-07")));
    assertEquals("4.5", Jcs.canonical(Json.parse("4.50")));
    assertEquals("0.002", Jcs.canonical(Json.parse("2e-3")));
    assertThrows(IllegalArgumentException.class, () -> Jcs.canonical(Json.parse("9007199254740993")));
  }

  @Test
  void keysByUtf16CodeUnitsAndStringsAsJsonStringify() {
    String text = "{\"\\u20ac\":\"Euro Sign\",\"\\r\":\"Carriage Return\",\"\\ufb33\":\"Hebrew Letter Dalet With Dagesh\",\"1\":\"One\","
        + "\"\\ud83d\\ude00\":\"Emoji: Grinning Face\",\"\\u0080\":\"Control\",\"\\u00f6\":\"Latin Small Letter O With Diaeresis\"}";
    String want = "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u0080\":\"Control\",\"\u00f6\":\"Latin Small Letter O With Diaeresis\","
        + "\"\u20ac\":\"Euro Sign\",\"\ud83d\ude00\":\"Emoji: Grinning Face\",\"\ufb33\":\"Hebrew Letter Dalet With Dagesh\"}";
    assertEquals(want, Jcs.canonical(Json.parse(text)));
    assertEquals("[\"\\u001f\\b\\\"\\\\ \u007f\",null,true]", Jcs.canonical(Json.parse("[\"\\u001f\\b\\\"\\\\ \\u007f\",null,true]")));
  }
}
