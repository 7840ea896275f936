// Prints every interval of an HdrHistogram interval log as HdrHistogram's Java
// HistogramLogReader reads it, one line per interval, in the format of
// `dump` in crds/tests/hlog_java.rs, so the two readings can be compared as text.
// Usage: java -cp HdrHistogram.jar:. HlogDump FILE.hlog

import org.HdrHistogram.EncodableHistogram;
import org.HdrHistogram.Histogram;
import org.HdrHistogram.HistogramIterationValue;
import org.HdrHistogram.HistogramLogReader;

public class HlogDump {
    public static void main(String[] args) throws Exception {
        HistogramLogReader reader = new HistogramLogReader(args[0]);
        EncodableHistogram e;
        int intervals = 0;
        while ((e = reader.nextIntervalHistogram()) != null) {
            Histogram h = (Histogram) e;
            StringBuilder sb = new StringBuilder();
            sb.append("tag=").append(h.getTag() == null ? "-" : h.getTag());
            sb.append(" start_ms=").append(h.getStartTimeStamp());
            sb.append(" end_ms=").append(h.getEndTimeStamp());
            sb.append(" config=").append(h.getLowestDiscernibleValue()).append(',')
                .append(h.getHighestTrackableValue()).append(',')
                .append(h.getNumberOfSignificantValueDigits());
            sb.append(" total=").append(h.getTotalCount());
            if (h.getTotalCount() > 0) {
                sb.append(" min=").append(h.getMinNonZeroValue());
                sb.append(" max=").append(h.getMaxValue());
                sb.append(" p50=").append(h.getValueAtPercentile(50.0));
                sb.append(" p99=").append(h.getValueAtPercentile(99.0));
            }
            sb.append(" values=");
            boolean first = true;
            for (HistogramIterationValue v : h.recordedValues()) {
                if (!first) {
                    sb.append(';');
                }
                first = false;
                sb.append(v.getValueIteratedTo()).append(':').append(v.getCountAtValueIteratedTo());
            }
            System.out.println(sb);
            intervals++;
        }
        System.out.println("intervals=" + intervals);
    }
}
