namespace HardenImage.Tests.Attacks;

/// <summary>A racer against a reader: the attacks where another process changes the cache while harden reads it.</summary>
internal static class Race
{
    /// <summary>
    /// Runs <paramref name="racerStep"/> (given its step number) again and again on another thread while
    /// <paramref name="attempt"/> runs again and again for <paramref name="duration"/>; returns how many steps the racer made.
    /// </summary>
    public static async Task<int> RunAsync(Action<int> racerStep, Func<Task> attempt, TimeSpan duration)
    {
        using var stop = new CancellationTokenSource();
        var racer = Task.Run(() =>
        {
            var steps = 0;
            for (; !stop.IsCancellationRequested; steps++) racerStep(steps);
            return steps;
        });
        try
        {
            var until = DateTime.UtcNow + duration;
            while (DateTime.UtcNow < until) await attempt();
        }
        finally
        {
            stop.Cancel();
        }
        return await racer.WaitAsync(TimeSpan.FromMinutes(2));
    }
}
