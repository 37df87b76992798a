// The live training chart: uPlot over the columns of MetricsSeries (loss on the left axis, accuracy 0–1 on the
// right). The container's data-points attribute tells how many steps are drawn (tests read it).
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

/** Whole steps only on the x axis. */
const STEP_INCREMENTS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000];

/** As many decimals as the tick spacing needs (a loss near ln 2 moves in the 4th decimal). */
function tickLabels(u, splits, axisIdx, space, increment) {
  const decimals = Math.min(8, Math.max(0, -Math.floor(Math.log10(increment))));
  return splits.map((v) => (v == null ? '' : v.toFixed(decimals)));
}

export class TrainingChart {
  #el;
  #plot = null;
  #series = null;
  #resize;

  constructor(el) {
    this.#el = el;
    this.#resize = new ResizeObserver(() => this.#fit());
    this.#resize.observe(el);
  }

  #size() {
    return { width: Math.max(240, this.#el.clientWidth), height: 260 };
  }

  #fit() {
    this.#plot?.setSize(this.#size());
  }

  /** Starts a new chart for a run (objective decides the accuracy series' name). */
  reset(series) {
    this.#plot?.destroy();
    this.#series = series;
    const accuracyLabel = series.accuracyKey;
    this.#plot = new uPlot(
      {
        ...this.#size(),
        class: 'training-chart',
        legend: { live: true },
        cursor: { drag: { x: false, y: false } },
        scales: { x: { time: false }, loss: { auto: true }, acc: { range: [0, 1] } },
        axes: [
          { label: 'step', incrs: STEP_INCREMENTS },
          { scale: 'loss', label: 'loss', values: tickLabels, size: 60 },
          { scale: 'acc', side: 1, label: accuracyLabel, grid: { show: false } },
        ],
        series: [
          { label: 'step' },
          { label: 'loss', scale: 'loss', stroke: '#c0392b', width: 2, value: (u, v) => (v == null ? '–' : v.toFixed(4)) },
          { label: accuracyLabel, scale: 'acc', stroke: '#2471a3', width: 2, value: (u, v) => (v == null ? '–' : v.toFixed(3)) },
        ],
      },
      series.columns(),
      this.#el,
    );
    this.#el.dataset.points = '0';
  }

  /** Redraws from the series (call after pushing metrics). */
  update() {
    if (!this.#plot || !this.#series) return;
    this.#plot.setData(this.#series.columns());
    this.#el.dataset.points = String(this.#series.count);
  }
}
