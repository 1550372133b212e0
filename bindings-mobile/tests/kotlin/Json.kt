// A small JSON reader for the shared scenario files: objects become LinkedHashMap (key order
// kept), arrays List, strings String, true/false Boolean, null null, and numbers BigDecimal
// (never a binary float).
package fundcore.tests

import java.math.BigDecimal

object Json {
    fun parse(text: String): Any? {
        val reader = Reader(text)
        val value = reader.value()
        reader.skipSpace()
        if (!reader.atEnd()) reader.fail("trailing characters")
        return value
    }

    private class Reader(val text: String) {
        var pos = 0

        fun atEnd() = pos >= text.length

        fun fail(what: String): Nothing = throw IllegalArgumentException("JSON: $what at offset $pos")

        fun skipSpace() {
            while (!atEnd() && text[pos].isWhitespace()) pos++
        }

        fun expect(c: Char) {
            skipSpace()
            if (atEnd() || text[pos] != c) fail("expected '$c'")
            pos++
        }

        fun value(): Any? {
            skipSpace()
            if (atEnd()) fail("unexpected end")
            return when (val c = text[pos]) {
                '{' -> obj()
                '[' -> array()
                '"' -> string()
                't' -> literal("true", true)
                'f' -> literal("false", false)
                'n' -> literal("null", null)
                else -> if (c == '-' || c.isDigit()) number() else fail("unexpected '$c'")
            }
        }

        fun literal(word: String, value: Any?): Any? {
            if (!text.startsWith(word, pos)) fail("expected $word")
            pos += word.length
            return value
        }

        fun obj(): Map<String, Any?> {
            expect('{')
            val map = LinkedHashMap<String, Any?>()
            skipSpace()
            if (text[pos] == '}') { pos++; return map }
            while (true) {
                skipSpace()
                val key = string()
                expect(':')
                map[key] = value()
                skipSpace()
                when (text.getOrNull(pos)) {
                    ',' -> pos++
                    '}' -> { pos++; return map }
                    else -> fail("expected ',' or '}'")
                }
            }
        }

        fun array(): List<Any?> {
            expect('[')
            val list = ArrayList<Any?>()
            skipSpace()
            if (text[pos] == ']') { pos++; return list }
            while (true) {
                list.add(value())
                skipSpace()
                when (text.getOrNull(pos)) {
                    ',' -> pos++
                    ']' -> { pos++; return list }
                    else -> fail("expected ',' or ']'")
                }
            }
        }

        fun string(): String {
            skipSpace()
            if (text.getOrNull(pos) != '"') fail("expected string")
            pos++
            val out = StringBuilder()
            while (true) {
                if (atEnd()) fail("unterminated string")
                val c = text[pos++]
                when (c) {
                    '"' -> return out.toString()
                    '\\' -> {
                        val e = text[pos++]
                        when (e) {
                            '"', '\\', '/' -> out.append(e)
                            'b' -> out.append('\b')
                            'f' -> out.append('\u000c')
                            'n' -> out.append('\n')
                            'r' -> out.append('\r')
                            't' -> out.append('\t')
                            'u' -> { out.append(text.substring(pos, pos + 4).toInt(16).toChar()); pos += 4 }
                            else -> fail("bad escape '\\$e'")
                        }
                    }
                    else -> out.append(c)
                }
            }
        }

        fun number(): BigDecimal {
            val start = pos
            while (!atEnd() && (text[pos].isDigit() || text[pos] in "+-.eE")) pos++
            return BigDecimal(text.substring(start, pos))
        }
    }
}
