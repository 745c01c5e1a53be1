package io.vmm4j.cli.compare;

import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.CategoryChart;
import org.knowm.xchart.CategoryChartBuilder;
import org.knowm.xchart.style.Styler;

import java.awt.Color;
import java.awt.Graphics2D;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.function.ToDoubleFunction;

import javax.imageio.ImageIO;

/** The comparison as a PNG: packets/s per mode next to the raw-tap ceiling, and what each packet cost the VMM. */
public final class Chart {
    private Chart() {
    }

    public static void write(Report report, Path file) throws IOException {
        System.setProperty("java.awt.headless", "true");
        List<String> categories = new ArrayList<>();
        for (String dir : List.of("tx", "rx")) {
            report.ceiling().rows().stream().filter(c -> c.direction().equals(dir))
                    .forEach(c -> categories.add(dir + " " + c.frameBytes() + " B"));
        }
        if (categories.isEmpty()) {
            report.rows().stream().filter(r -> r.error() == null).forEach(r -> {
                String c = r.direction() + " " + r.frameBytes() + " B";
                if (!categories.contains(c)) {
                    categories.add(c);
                }
            });
        }
        Set<String> modes = new LinkedHashSet<>();
        report.rows().stream().filter(r -> r.error() == null).forEach(r -> modes.add(r.mode()));

        CategoryChart pps = chart("Packets per second (thousands), higher is better", "direction and frame size", "kpps");
        List<Double> ceiling = new ArrayList<>();
        for (String c : categories) {
            String[] p = c.split(" ");
            ceiling.add(report.ceiling().pps(p[0], Integer.parseInt(p[1])) / 1e3);
        }
        pps.addSeries("raw tap (ceiling)", categories, ceiling).setFillColor(COLORS.get("raw tap (ceiling)"));
        for (String mode : modes) {
            pps.addSeries(mode, categories, values(report, mode, categories, r -> r.packetsPerSecond() / 1e3))
                    .setFillColor(COLORS.getOrDefault(mode, Color.GRAY));
        }
        // the article's claim: with vhost the VMM process makes ~0 syscalls per packet
        String first = categories.isEmpty() ? "tx 64 B" : categories.getFirst();
        String[] fp = first.split(" ");
        List<String> modeList = new ArrayList<>(modes);
        CategoryChart cost = chart("Syscalls per packet in the VMM process, " + first + " (lower is better)", "mode", "syscalls/pkt");
        cost.getStyler().setStacked(true);
        cost.getStyler().setLegendPosition(Styler.LegendPosition.OutsideS);
        cost.addSeries("VMM I/O threads", modeList, modeList.stream().map(m -> value(report, m, fp, Report.Row::vmmSyscallsPerPacket)).toList())
                .setFillColor(new Color(0x4C72B0));
        cost.addSeries("irqfd router (in-process stand-in for KVM irqfd)", modeList,
                modeList.stream().map(m -> value(report, m, fp, Report.Row::irqfdSyscallsPerPacket)).toList()).setFillColor(new Color(0x8172B3));
        cost.addSeries("vCPU thread (kicks; in emulated-sync also the device I/O)", modeList,
                modeList.stream().map(m -> value(report, m, fp, Report.Row::vcpuSyscallsPerPacket)).toList()).setFillColor(new Color(0xDD8452));
        BufferedImage top = BitmapEncoder.getBufferedImage(pps);
        BufferedImage bottom = BitmapEncoder.getBufferedImage(cost);
        BufferedImage both = new BufferedImage(top.getWidth(), top.getHeight() + bottom.getHeight(), BufferedImage.TYPE_INT_RGB);
        Graphics2D g = both.createGraphics();
        g.setColor(Color.WHITE);
        g.fillRect(0, 0, both.getWidth(), both.getHeight());
        g.drawImage(top, 0, 0, null);
        g.drawImage(bottom, 0, top.getHeight(), null);
        g.dispose();
        ImageIO.write(both, "png", file.toFile());
    }

    private static final java.util.Map<String, Color> COLORS = java.util.Map.of("raw tap (ceiling)", new Color(0x8C8C8C),
            "emulated-sync", new Color(0xC44E52), "emulated", new Color(0xDD8452), "vhost-user", new Color(0x55A868),
            "vhost-net", new Color(0x4C72B0));

    private static double value(Report report, String mode, String[] category, ToDoubleFunction<Report.Row> f) {
        return report.rows().stream().filter(r -> r.error() == null && r.mode().equals(mode) && r.direction().equals(category[0])
                && r.frameBytes() == Integer.parseInt(category[1])).mapToDouble(f).findFirst().orElse(0);
    }

    private static CategoryChart chart(String title, String xAxis, String yAxis) {
        CategoryChart c = new CategoryChartBuilder().width(1000).height(420).title(title).xAxisTitle(xAxis)
                .yAxisTitle(yAxis).build();
        c.getStyler().setLegendPosition(Styler.LegendPosition.InsideNE);
        c.getStyler().setChartBackgroundColor(Color.WHITE);
        c.getStyler().setPlotGridVerticalLinesVisible(false);
        return c;
    }

    private static List<Double> values(Report report, String mode, List<String> categories, ToDoubleFunction<Report.Row> f) {
        List<Double> out = new ArrayList<>();
        for (String c : categories) {
            String[] p = c.split(" ");
            out.add(report.rows().stream().filter(r -> r.error() == null && r.mode().equals(mode) && r.direction().equals(p[0])
                    && r.frameBytes() == Integer.parseInt(p[1])).mapToDouble(f).findFirst().orElse(0));
        }
        return out;
    }
}
