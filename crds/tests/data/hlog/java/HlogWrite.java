// Writes the fixture java-writer.hlog with HdrHistogram's Java HistogramLogWriter:
// deterministic values (a fixed linear congruential generator), tagged lines in Barrage's
// configuration (microseconds, 1..3_600_000_000, 3 digits, max printed in ms), an untagged
// line in the Java tools' usual nanosecond configuration, and an empty interval.
// Usage: java -cp HdrHistogram.jar:. HlogWrite OUT.hlog

import java.io.FileOutputStream;
import java.io.PrintStream;
import org.HdrHistogram.Histogram;
import org.HdrHistogram.HistogramLogWriter;

public class HlogWrite {
    static long seed = 42;

    static long next(long bound) {
        seed = seed * 6364136223846793005L + 1442695040888963407L;
        return (seed >>> 33) % bound;
    }

    public static void main(String[] args) throws Exception {
        long startMs = 1732567200000L;
        PrintStream out = new PrintStream(new FileOutputStream(args[0]), false, "US-ASCII");
        HistogramLogWriter w = new HistogramLogWriter(out);
        w.outputComment("[Written by HdrHistogram's Java HistogramLogWriter for Barrage's tests (HlogWrite.java)]");
        w.outputLogFormatVersion();
        w.outputStartTime(startMs);
        w.outputBaseTime(startMs);
        w.outputLegend();
        for (int i = 0; i < 3; i++) {
            Histogram produce = new Histogram(1, 3_600_000_000L, 3);
            produce.setTag("produce");
            Histogram service = new Histogram(1, 3_600_000_000L, 3);
            service.setTag("service");
            for (int j = 0; j < 1000; j++) {
                long v = 100 + next(50_000);
                produce.recordValue(v);
                service.recordValue(v / 2 + 1);
            }
            if (i == 1) {
                produce.recordValueWithCount(3_599_999_999L, 3);
            }
            w.outputIntervalHistogram(i * 10.0, (i + 1) * 10.0, produce, 1000.0);
            w.outputIntervalHistogram(i * 10.0, (i + 1) * 10.0, service, 1000.0);
        }
        Histogram ns = new Histogram(1, 3_600_000_000_000L, 2);
        for (int j = 0; j < 200; j++) {
            ns.recordValue(1_000 + next(5_000_000));
        }
        w.outputIntervalHistogram(30.0, 40.0, ns);
        Histogram empty = new Histogram(1, 3_600_000_000L, 3);
        empty.setTag("lag");
        w.outputIntervalHistogram(40.0, 50.0, empty, 1000.0);
        out.close();
    }
}
