# hrw-preflight Windows probe (Windows PowerShell 5.1).
#
# Started by a short bootstrap (see hrw_preflight/facts/windows/probe.py) that reads this script
# from standard input and passes the probe parameters as one base64 JSON string. Nothing
# here is built from the parameters as code: they are decoded with ConvertFrom-Json and
# used as data only.
#
# Output: one block per section, between '<boundary> BEGIN <name>' and '<boundary> END <name>',
# where <boundary> is the random value the controller chose for this run (params.boundary).
# A block holds parts ('<boundary> PART <name>'); each part is the ConvertTo-Json text of what
# the host returned (nothing when a pipeline yielded nothing), or '<boundary> ERROR' followed
# by the JSON of the error record. No line of ConvertTo-Json text starts with the boundary's
# letters, so nothing read from the host can pass for a marker.
# Every part has its own try/catch, so one failure never
# hides the others. The parser on the suite side decides what an error means.
#
# Keep this file ASCII: the bootstrap reads it through the console input encoding.
# Each '#region hrw:<name>' block is fingerprinted by the lab emulator; after changing a
# block, change its answer in lab/winrm_emulator/ps_sections.py, raise that answer's
# version, and edit its entry in lab/winrm_emulator/probe_blocks.py by hand (the tests fail
# until all three agree; python -m lab.winrm_emulator.probe_blocks lists stale entries).

#region hrw:preamble
param([string]$ParamsB64)

$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
try { [Console]::OutputEncoding = New-Object System.Text.UTF8Encoding($false) } catch { $null = $_ }

$HrwParams = [Text.Encoding]::UTF8.GetString([Convert]::FromBase64String($ParamsB64)) | ConvertFrom-Json
$HrwB = [string]$HrwParams.boundary
$HrwTimeoutMs = [int]$HrwParams.connect_timeout_ms
$HrwAgent = $null
$HrwWorkers = @()
$HrwTargets = @()
$HrwProxy = $null

function Write-HrwError {
    param([System.Management.Automation.ErrorRecord]$Record)
    "$HrwB ERROR"
    [pscustomobject]@{
        ErrorId  = [string]$Record.FullyQualifiedErrorId
        Category = [string]$Record.CategoryInfo.Category
        Message  = [string]$Record.Exception.Message
    } | ConvertTo-Json
}

function ConvertTo-HrwProxy {
    param([string]$Text, [string]$User)
    if (-not $Text) { return $null }
    $full = $Text
    if ($full -notmatch '^[A-Za-z][A-Za-z0-9+.-]*://') { $full = 'http://' + $full }
    $uri = New-Object System.Uri($full)
    $name = ''
    $secret = ''
    if ($uri.UserInfo) {
        $pair = $uri.UserInfo.Split([char[]]@(':'), 2)
        $name = [Uri]::UnescapeDataString($pair[0])
        if ($pair.Count -gt 1) { $secret = [Uri]::UnescapeDataString($pair[1]) }
    }
    elseif ($User) { $name = $User }
    $masked = $uri.Scheme + '://'
    if ($name) { $masked += [Uri]::EscapeDataString($name) + ':***@' }
    $masked += $uri.Host + ':' + $uri.Port
    [pscustomobject]@{
        Url            = $masked
        Host           = $uri.Host
        Port           = $uri.Port
        HasCredentials = [bool]$name
        User           = $name
        Secret         = $secret
    }
}

function ConvertFrom-HrwProxyParams {
    # The proxy given by the controller (hrw_proxy), already split into host, port and
    # user. Its password is not among the parameters: the bootstrap read it from standard
    # input into $HrwProxySecretB64, so that no logged script text or parameter holds it
    # (script block logging, event 4104; module logging, event 4103). It is decoded and
    # used in .NET method calls only.
    param($Given)
    if (-not $Given -or -not $Given.host) { return $null }
    $name = [string]$Given.user
    $secret = ''
    if ($name -and $HrwProxySecretB64) {
        $secret = [Text.Encoding]::UTF8.GetString([Convert]::FromBase64String($HrwProxySecretB64))
    }
    $masked = 'http://'
    if ($name) { $masked += [Uri]::EscapeDataString($name) + ':***@' }
    $masked += [string]$Given.host + ':' + [int]$Given.port
    [pscustomobject]@{
        Url            = $masked
        Host           = [string]$Given.host
        Port           = [int]$Given.port
        HasCredentials = [bool]$name
        User           = $name
        Secret         = $secret
    }
}

function ConvertTo-HrwSocketStatus {
    param([Exception]$Failure)
    $inner = $Failure
    while ($inner -and -not ($inner -is [System.Net.Sockets.SocketException])) {
        $inner = $inner.InnerException
    }
    if (-not $inner) { return 'error' }
    switch ([string]$inner.SocketErrorCode) {
        'ConnectionRefused' { return 'refused' }
        'TimedOut' { return 'timeout' }
        'HostNotFound' { return 'unresolved' }
        'HostUnreachable' { return 'unreachable' }
        'NetworkUnreachable' { return 'unreachable' }
        default { return 'error' }
    }
}

function Read-HrwHttpStatusLine {
    param([System.IO.Stream]$Stream)
    $head = New-Object System.Text.StringBuilder
    $one = New-Object byte[] 1
    while ($head.Length -lt 8192) {
        if ($Stream.Read($one, 0, 1) -le 0) { break }
        [void]$head.Append([char]$one[0])
        if ($head.Length -ge 4 -and $head.ToString().EndsWith("`r`n`r`n")) { break }
    }
    return ($head.ToString() -split "`r`n")[0]
}

function Test-HrwEndpoint {
    param($Probe, [bool]$Connected)
    $target = $Probe.Target
    $result = [ordered]@{
        Host         = $target.Host
        Role         = $target.Role
        ViaProxy     = $null
        Tcp          = 'error'
        Tls          = 'not-attempted'
        Detail       = ''
        PolicyErrors = ''
        Chain        = @()
        ChainSource  = 'none'
        BuiltChain   = @()
        ChainStatus  = @()
    }
    if ($HrwProxy) { $result.ViaProxy = '{0}:{1}' -f $HrwProxy.Host, $HrwProxy.Port }
    $ssl = $null
    try {
        if (-not $Connected) {
            $result.Tcp = 'timeout'
            $result.Detail = 'no TCP connection within {0} ms' -f $HrwTimeoutMs
            return [pscustomobject]$result
        }
        if ($Probe.Task.IsFaulted) {
            $failure = $Probe.Task.Exception.InnerException
            $result.Tcp = ConvertTo-HrwSocketStatus $failure
            $result.Detail = $failure.Message
            return [pscustomobject]$result
        }
        $stream = $Probe.Client.GetStream()
        $stream.ReadTimeout = $HrwTimeoutMs
        $stream.WriteTimeout = $HrwTimeoutMs
        if ($HrwProxy) {
            $request = "CONNECT {0}:443 HTTP/1.1`r`nHost: {0}:443`r`n" -f $target.Host
            if ($HrwProxy.HasCredentials -and $HrwProxy.Secret) {
                $pair = [Text.Encoding]::UTF8.GetBytes($HrwProxy.User + ':' + $HrwProxy.Secret)
                $request += 'Proxy-Authorization: Basic ' + [Convert]::ToBase64String($pair) + "`r`n"
            }
            $request += "`r`n"
            $bytes = [Text.Encoding]::ASCII.GetBytes($request)
            try {
                $stream.Write($bytes, 0, $bytes.Length)
                $status = Read-HrwHttpStatusLine $stream
            }
            catch {
                $result.Tcp = 'timeout'
                $result.Detail = 'proxy did not answer CONNECT: ' + $_.Exception.Message
                return [pscustomobject]$result
            }
            if ($status -notmatch '^HTTP/1\.[01] 200') {
                $result.Tcp = 'proxy-refused'
                $result.Detail = 'proxy answered CONNECT with: ' + $status
                return [pscustomobject]$result
            }
        }
        $result.Tcp = 'ok'
        $sent = New-Object System.Collections.ArrayList
        $built = New-Object System.Collections.ArrayList
        $statuses = New-Object System.Collections.ArrayList
        $policies = New-Object System.Collections.ArrayList
        # Record what the host received and accept it: the suite judges the chain. The
        # certificates the server sent are the leaf plus the chain's ExtraStore (SslStream
        # puts them there to build the chain); ChainElements is the chain built locally
        # (root added, maybe another path), kept apart and labelled as built.
        $callback = {
            param($source, $certificate, $builtChain, $policyErrors)
            [void]$policies.Add([string]$policyErrors)
            if ($certificate) { [void]$sent.Add([Convert]::ToBase64String($certificate.GetRawCertData())) }
            if ($builtChain) {
                foreach ($extra in $builtChain.ChainPolicy.ExtraStore) {
                    $encoded = [Convert]::ToBase64String($extra.RawData)
                    if (-not $sent.Contains($encoded)) { [void]$sent.Add($encoded) }
                }
                foreach ($element in $builtChain.ChainElements) {
                    [void]$built.Add([Convert]::ToBase64String($element.Certificate.RawData))
                }
                foreach ($status in $builtChain.ChainStatus) { [void]$statuses.Add([string]$status.Status) }
            }
            return $true
        }.GetNewClosure()
        $validator = [System.Net.Security.RemoteCertificateValidationCallback]$callback
        $ssl = New-Object System.Net.Security.SslStream($stream, $false, $validator)
        try {
            $protocols = [System.Security.Authentication.SslProtocols]::Tls12
            $ssl.AuthenticateAsClient($target.Host, $null, $protocols, $false)
            $result.Tls = 'ok'
            $result.Detail = 'TLS handshake completed'
        }
        catch {
            $result.Tls = 'failed'
            $failure = $_.Exception
            while ($failure.InnerException) { $failure = $failure.InnerException }
            $result.Detail = 'TLS handshake failed: ' + $failure.Message
        }
        $result.PolicyErrors = ($policies -join ', ')
        $result.Chain = @($sent)
        $result.ChainSource = $(if ($sent.Count -gt 1) { 'sent' } elseif ($sent.Count -eq 1) { 'leaf-only' } else { 'none' })
        $result.BuiltChain = @($built)
        $result.ChainStatus = @($statuses)
        return [pscustomobject]$result
    }
    catch {
        $result.Detail = $_.Exception.Message
        return [pscustomobject]$result
    }
    finally {
        if ($ssl) { $ssl.Dispose() }
        $Probe.Client.Close()
    }
}
#endregion hrw:preamble

#region hrw:service
"$HrwB BEGIN service"
# Win32_Service, not Get-Service: ServiceController.StartType exists only from .NET 4.6.1,
# and WMF 5.1 also runs on .NET 4.5.2, the under-spec hosts this suite exists to catch.
# No such service prints nothing.
try {
    Get-CimInstance -ClassName Win32_Service -Filter "Name='HealthService'" -ErrorAction Stop |
        Select-Object -Property @('Name', 'State', 'StartMode') |
        ConvertTo-Json
}
catch { Write-HrwError $_ }
"$HrwB END service"
#endregion hrw:service

#region hrw:hardware
"$HrwB BEGIN hardware"
"$HrwB PART processor"
try {
    Get-CimInstance -ClassName Win32_Processor -ErrorAction Stop |
        Select-Object -Property @('DeviceID', 'NumberOfLogicalProcessors') |
        ConvertTo-Json
}
catch { Write-HrwError $_ }
"$HrwB PART computersystem"
try {
    Get-CimInstance -ClassName Win32_ComputerSystem -ErrorAction Stop |
        Select-Object -Property @('TotalPhysicalMemory') |
        ConvertTo-Json
}
catch { Write-HrwError $_ }
"$HrwB END hardware"
#endregion hrw:hardware

#region hrw:pressure
"$HrwB BEGIN pressure"
# CPU load from the raw _Total processor counter read three times, 500 ms apart: the parser
# computes busy time from the deltas. Not Win32_Processor.LoadPercentage (an instant value
# that can be null), not Get-Counter (its counter paths are localised).
"$HrwB PART processor"
try {
    $samples = @(for ($i = 0; $i -lt 3; $i++) {
            if ($i -gt 0) { Start-Sleep -Milliseconds 500 }
            Get-CimInstance -ClassName Win32_PerfRawData_PerfOS_Processor -Filter "Name='_Total'" -ErrorAction Stop |
                Select-Object -Property @('Name', 'PercentProcessorTime', 'Timestamp_Sys100NS')
        })
    $samples | ConvertTo-Json
}
catch { Write-HrwError $_ }
"$HrwB PART os"
try {
    Get-CimInstance -ClassName Win32_OperatingSystem -ErrorAction Stop |
        Select-Object -Property @('FreePhysicalMemory', 'TotalVisibleMemorySize') |
        ConvertTo-Json
}
catch { Write-HrwError $_ }
"$HrwB END pressure"
#endregion hrw:pressure

#region hrw:prereqs
"$HrwB BEGIN prereqs"
# A registry key that does not exist prints nothing (the parser reads it as absent); a key
# that exists but cannot be read fails its part.
"$HrwB PART powershell"
try {
    [pscustomobject]@{ Version = $PSVersionTable.PSVersion.ToString() } | ConvertTo-Json
}
catch { Write-HrwError $_ }
"$HrwB PART dotnet"
try {
    $ndpKey = 'HKLM:\SOFTWARE\Microsoft\NET Framework Setup\NDP\v4\Full'
    if (Test-Path -LiteralPath $ndpKey) {
        Get-ItemProperty -LiteralPath $ndpKey -ErrorAction Stop |
            Select-Object -Property @('Release') |
            ConvertTo-Json
    }
}
catch { Write-HrwError $_ }
"$HrwB PART tls12client"
try {
    $tlsKey = 'HKLM:\SYSTEM\CurrentControlSet\Control\SecurityProviders\SCHANNEL\Protocols\TLS 1.2\Client'
    if (Test-Path -LiteralPath $tlsKey) {
        Get-ItemProperty -LiteralPath $tlsKey -ErrorAction Stop |
            Select-Object -Property @('Enabled', 'DisabledByDefault') |
            ConvertTo-Json
    }
}
catch { Write-HrwError $_ }
"$HrwB PART strongcrypto"
# .NET 4 strong crypto, in the 64-bit and the 32-bit (WOW6432Node) registry view: the agent's
# own TLS depends on it. A missing key or value prints as null.
try {
    $crypto = @(foreach ($view in @('SOFTWARE\Microsoft\.NETFramework\v4.0.30319', 'SOFTWARE\WOW6432Node\Microsoft\.NETFramework\v4.0.30319')) {
            $values = $null
            if (Test-Path -LiteralPath ('HKLM:\' + $view)) {
                $values = Get-ItemProperty -LiteralPath ('HKLM:\' + $view) -ErrorAction Stop
            }
            [pscustomobject]@{
                Key                      = $view
                Exists                   = [bool]$values
                SchUseStrongCrypto       = $(if ($values) { $values.SchUseStrongCrypto } else { $null })
                SystemDefaultTlsVersions = $(if ($values) { $values.SystemDefaultTlsVersions } else { $null })
            }
        })
    $crypto | ConvertTo-Json
}
catch { Write-HrwError $_ }
"$HrwB END prereqs"
#endregion hrw:prereqs

#region hrw:clock
"$HrwB BEGIN clock"
# Ticks arithmetic, not DateTimeOffset.ToUnixTimeMilliseconds(): that needs .NET 4.6 and
# this must work on the hosts whose .NET is too old.
try {
    [pscustomobject]@{
        UtcUnixMilliseconds = [long](([DateTime]::UtcNow.Ticks - 621355968000000000) / 10000)
    } | ConvertTo-Json
}
catch { Write-HrwError $_ }
"$HrwB END clock"
#endregion hrw:clock

#region hrw:worker
"$HrwB BEGIN worker"
"$HrwB PART agent"
try {
    $config = New-Object -ComObject 'AgentConfigManager.MgmtSvcCfg'
    $workspaces = @($config.GetCloudWorkspaces() | ForEach-Object { [string]$_.workspaceId })
    $proxyRead = $null
    $proxyError = $null
    try {
        # Strict mode in this child scope only: a property the agent's COM object lacks then
        # throws (PropertyNotFoundStrict) instead of reading as $null, which looks like "no proxy".
        $proxyRead = & {
            Set-StrictMode -Version 2.0
            [pscustomobject]@{
                Url      = [string]$config.proxyUrl
                Username = [string]$config.proxyUsername
            }
        }
    }
    catch {
        $proxyError = [pscustomobject]@{
            ErrorId = [string]$_.FullyQualifiedErrorId
            Message = [string]$_.Exception.Message
        }
    }
    $HrwAgent = [pscustomobject]@{
        Workspaces    = $workspaces
        ProxyUrl      = $(if ($proxyRead) { $proxyRead.Url } else { '' })
        ProxyUsername = $(if ($proxyRead) { $proxyRead.Username } else { '' })
        ProxyError    = $proxyError
    }
    $HrwAgent | ConvertTo-Json
}
catch { Write-HrwError $_ }
"$HrwB PART workers"
try {
    $registryRoot = 'HKLM:\SOFTWARE\Microsoft\HybridRunbookWorker'
    if (Test-Path -LiteralPath $registryRoot) {
        $HrwWorkers = @(Get-ChildItem -LiteralPath $registryRoot -Recurse -ErrorAction Stop |
                ForEach-Object {
                    $jrdsUri = $_.GetValue('JobRuntimeDataServiceUri')
                    if ($jrdsUri) {
                        [pscustomobject]@{
                            Key                      = $_.Name
                            Group                    = $_.PSChildName
                            JobRuntimeDataServiceUri = [string]$jrdsUri
                        }
                    }
                })
        $HrwWorkers | ConvertTo-Json
    }
}
catch { Write-HrwError $_ }
"$HrwB PART version"
try {
    $agentDir = Join-Path $env:ProgramFiles 'Microsoft Monitoring Agent\Agent\AzureAutomation'
    if (Test-Path -LiteralPath $agentDir) {
        Get-ChildItem -LiteralPath $agentDir -Directory -ErrorAction Stop |
            Select-Object -Property @('Name') |
            ConvertTo-Json
    }
}
catch { Write-HrwError $_ }
"$HrwB PART effective"
try {
    $workspaceId = $null
    if ($HrwParams.workspace_id) { $workspaceId = [string]$HrwParams.workspace_id }
    elseif ($HrwAgent -and @($HrwAgent.Workspaces).Count -gt 0) {
        $workspaceId = [string]@($HrwAgent.Workspaces)[0]
    }
    $endpoints = [ordered]@{ agentsvc = $null; jrds = $null; oms = $null; ods = $null }
    if ($workspaceId) {
        $endpoints.agentsvc = $workspaceId + '.agentsvc.azure-automation.net'
        $endpoints.oms = $workspaceId + '.oms.opinsights.azure.com'
        $endpoints.ods = $workspaceId + '.ods.opinsights.azure.com'
    }
    foreach ($worker in $HrwWorkers) {
        if (-not $endpoints.jrds) { $endpoints.jrds = (New-Object System.Uri($worker.JobRuntimeDataServiceUri)).Host }
    }
    foreach ($role in @('agentsvc', 'jrds', 'oms', 'ods')) {
        if ($HrwParams.endpoints -and $HrwParams.endpoints.$role) { $endpoints[$role] = [string]$HrwParams.endpoints.$role }
    }
    $proxySource = 'none'
    if ($null -ne $HrwParams.proxy) {
        $proxySource = 'params'
        $HrwProxy = ConvertFrom-HrwProxyParams $HrwParams.proxy
    }
    elseif ($HrwAgent -and $HrwAgent.ProxyUrl) {
        $proxySource = 'agent'
        $HrwProxy = ConvertTo-HrwProxy $HrwAgent.ProxyUrl $HrwAgent.ProxyUsername
    }
    if (-not $HrwProxy) { $proxySource = 'none' }
    foreach ($role in @('agentsvc', 'jrds', 'oms', 'ods')) {
        if ($endpoints[$role]) { $HrwTargets += [pscustomobject]@{ Role = $role; Host = $endpoints[$role] } }
    }
    $shownProxy = $null
    if ($HrwProxy) {
        $shownProxy = [pscustomobject]@{
            Url            = $HrwProxy.Url
            Host           = $HrwProxy.Host
            Port           = $HrwProxy.Port
            HasCredentials = $HrwProxy.HasCredentials
            Source         = $proxySource
        }
    }
    [pscustomobject]@{
        WorkspaceId = $workspaceId
        Agentsvc    = $endpoints.agentsvc
        Jrds        = $endpoints.jrds
        Oms         = $endpoints.oms
        Ods         = $endpoints.ods
        Proxy       = $shownProxy
    } | ConvertTo-Json
}
catch { Write-HrwError $_ }
"$HrwB END worker"
#endregion hrw:worker

#region hrw:arc
"$HrwB BEGIN arc"
# The Azure Connected Machine agent's services: himds (its identity service) marks the host
# Arc-enabled. Win32_Service gives State and StartMode as text on Windows PowerShell 5.1.
$HrwArc = $false
"$HrwB PART services"
try {
    $arcServices = @(Get-CimInstance -ClassName Win32_Service -Filter "Name='himds' OR Name='ExtensionService' OR Name='GCArcService'" -ErrorAction Stop |
            Select-Object -Property @('Name', 'State', 'StartMode'))
    $HrwArc = @($arcServices | Where-Object { $_.Name -eq 'himds' }).Count -gt 0
    $arcServices | ConvertTo-Json
}
catch { Write-HrwError $_ }
"$HrwB PART folder"
try {
    $arcDir = Join-Path $env:ProgramData 'AzureConnectedMachineAgent'
    [pscustomobject]@{ Path = $arcDir; Exists = (Test-Path -LiteralPath $arcDir) } | ConvertTo-Json
}
catch { Write-HrwError $_ }
"$HrwB END arc"
#endregion hrw:arc

#region hrw:extension
"$HrwB BEGIN extension"
# The guest agent's folder of the HybridWorkerForWindows handler: the newest version's
# RuntimeSettings\<seq>.settings (public settings only: the protected part is never read
# into a variable) and Status\<seq>.status for the highest <seq>.
$HrwExtDir = $null
$HrwExtPublic = $null
$HrwExtSeq = $null
"$HrwB PART versions"
try {
    $handlerDir = 'C:\Packages\Plugins\Microsoft.Azure.Automation.HybridWorker.HybridWorkerForWindows'
    if (Test-Path -LiteralPath $handlerDir) {
        $versions = @(Get-ChildItem -LiteralPath $handlerDir -Directory -ErrorAction Stop)
        $newest = $versions | Sort-Object -Descending -Property @{ Expression = {
                $v = $null
                if ([version]::TryParse($_.Name, [ref]$v)) { $v } else { [version]'0.0' }
            }
        } | Select-Object -First 1
        if ($newest) { $HrwExtDir = $newest.FullName }
        $versions | Select-Object -Property @('Name', 'FullName') | ConvertTo-Json
    }
}
catch { Write-HrwError $_ }
"$HrwB PART settings"
try {
    $settingsDir = $null
    if ($HrwExtDir) { $settingsDir = Join-Path $HrwExtDir 'RuntimeSettings' }
    if ($settingsDir -and (Test-Path -LiteralPath $settingsDir)) {
        $newestSettings = Get-ChildItem -LiteralPath $settingsDir -Filter '*.settings' -File -ErrorAction Stop |
            Where-Object { $_.BaseName -match '^[0-9]{1,9}$' } |
            Sort-Object -Descending -Property @{ Expression = { [int]$_.BaseName } } |
            Select-Object -First 1
        if ($newestSettings) {
            $HrwExtSeq = [int]$newestSettings.BaseName
            $handler = @((Get-Content -LiteralPath $newestSettings.FullName -Raw -ErrorAction Stop | ConvertFrom-Json).runtimeSettings)[0].handlerSettings
            $HrwExtPublic = $handler.publicSettings
            $handler = $null
            [pscustomobject]@{
                Seq                  = $HrwExtSeq
                File                 = $newestSettings.FullName
                AutomationAccountURL = [string]$HrwExtPublic.AutomationAccountURL
                ProxyServer          = [string]$HrwExtPublic.ProxySettings.ProxyServer
                ProxyUserName        = [string]$HrwExtPublic.ProxySettings.UserName
            } | ConvertTo-Json
        }
    }
}
catch { Write-HrwError $_ }
"$HrwB PART status"
try {
    if ($null -ne $HrwExtSeq) {
        $statusFile = Join-Path $HrwExtDir ('Status\' + $HrwExtSeq + '.status')
        if (Test-Path -LiteralPath $statusFile) {
            $statusDoc = Get-Content -LiteralPath $statusFile -Raw -ErrorAction Stop | ConvertFrom-Json
            $top = @($statusDoc)[0].status
            [pscustomobject]@{
                File                     = $statusFile
                Status                   = [string]$top.status
                Code                     = $top.code
                Operation                = [string]$top.operation
                ConfigurationAppliedTime = [string]$top.configurationAppliedTime
                Message                  = [string]$top.formattedMessage.message
                Substatus                = @(foreach ($sub in @($top.substatus)) {
                        if ($sub) {
                            [pscustomobject]@{
                                Name    = [string]$sub.name
                                Status  = [string]$sub.status
                                Code    = $sub.code
                                Message = [string]$sub.formattedMessage.message
                            }
                        }
                    })
            } | ConvertTo-Json -Depth 4
        }
    }
}
catch { Write-HrwError $_ }
"$HrwB PART effective"
try {
    # The account's endpoints join the network probe's targets; the extension's own proxy is
    # used only when neither hrw_proxy nor the agent named one (the network block has one).
    $accountUrl = $null
    $urlSource = $null
    if ($HrwExtPublic -and $HrwExtPublic.AutomationAccountURL) {
        $accountUrl = [string]$HrwExtPublic.AutomationAccountURL
        $urlSource = 'settings'
    }
    elseif ($HrwParams.automation_account_url) {
        $accountUrl = [string]$HrwParams.automation_account_url
        $urlSource = 'override'
    }
    $extEndpoints = [ordered]@{ 'ext-jrds' = $null; 'ext-agentsvc' = $null; 'arc-his' = $null; 'arc-login' = $null }
    if ($accountUrl) {
        $jrdsHost = (New-Object System.Uri($accountUrl)).Host
        $extEndpoints['ext-jrds'] = $jrdsHost
        if ($jrdsHost.Contains('.jrds.')) {
            $at = $jrdsHost.IndexOf('.jrds.')
            $extEndpoints['ext-agentsvc'] = $jrdsHost.Substring(0, $at) + '.agentsvc.' + $jrdsHost.Substring($at + 6)
        }
        if ($HrwArc) {
            $extEndpoints['arc-his'] = 'gbl.his.arc.azure.com'
            $extEndpoints['arc-login'] = 'login.microsoftonline.com'
        }
    }
    $extProxy = $null
    if ($HrwExtPublic -and $HrwExtPublic.ProxySettings -and $HrwExtPublic.ProxySettings.ProxyServer) {
        $extProxy = ConvertTo-HrwProxy ([string]$HrwExtPublic.ProxySettings.ProxyServer) ([string]$HrwExtPublic.ProxySettings.UserName)
    }
    if ($accountUrl -and $extProxy -and -not $HrwProxy -and $null -eq $HrwParams.proxy) { $HrwProxy = $extProxy }
    $known = @($HrwTargets | ForEach-Object { $_.Host })
    foreach ($role in @($extEndpoints.Keys)) {
        $name = $extEndpoints[$role]
        if ($name -and $known -notcontains $name) {
            $HrwTargets += [pscustomobject]@{ Role = $role; Host = $name }
            $known += $name
        }
    }
    $shownProxy = $null
    if ($extProxy) { $shownProxy = $extProxy.Url }
    [pscustomobject]@{
        AccountUrl       = $accountUrl
        AccountUrlSource = $urlSource
        Arc              = $HrwArc
        Endpoints        = [pscustomobject]$extEndpoints
        Proxy            = $shownProxy
    } | ConvertTo-Json
}
catch { Write-HrwError $_ }
"$HrwB END extension"
#endregion hrw:extension

#region hrw:network
"$HrwB BEGIN network"
try {
    # Start every connect first, then wait on one shared deadline: blocked endpoints cost
    # one timeout in total, not one each.
    $probes = @()
    foreach ($target in $HrwTargets) {
        $client = New-Object System.Net.Sockets.TcpClient
        if ($HrwProxy) { $task = $client.ConnectAsync($HrwProxy.Host, [int]$HrwProxy.Port) }
        else { $task = $client.ConnectAsync($target.Host, 443) }
        $probes += [pscustomobject]@{ Target = $target; Client = $client; Task = $task }
    }
    $deadline = [DateTime]::UtcNow.AddMilliseconds($HrwTimeoutMs)
    $results = @(foreach ($probe in $probes) {
            $left = [int][Math]::Max(0, ($deadline - [DateTime]::UtcNow).TotalMilliseconds)
            $finished = $false
            try { $finished = $probe.Task.Wait($left) } catch { $finished = $true }
            Test-HrwEndpoint $probe $finished
        })
    $results | ConvertTo-Json -Depth 4
}
catch { Write-HrwError $_ }
"$HrwB END network"
#endregion hrw:network

#region hrw:events
"$HrwB BEGIN events"
# Get-WinEvent reports a message it cannot format as a non-terminating error; with
# -ErrorAction Stop one such event would lose the whole log. So errors are collected, each
# event's message is formatted here one at a time (a failure stays with that event), and
# only a log that does not exist or cannot be read fails its part. No event: no output.
function Read-HrwEvents {
    param([hashtable]$Filter, [int]$Max)
    $problems = $null
    $found = @(Get-WinEvent -FilterHashtable $Filter -MaxEvents $Max -ErrorAction SilentlyContinue -ErrorVariable problems)
    $fatal = @($problems | Where-Object { [string]$_.FullyQualifiedErrorId -like 'NoMatchingLogsFound*' })
    if ($found.Count -eq 0 -and $fatal.Count -eq 0) {
        $fatal = @($problems | Where-Object { [string]$_.FullyQualifiedErrorId -notlike 'NoMatchingEventsFound*' })
    }
    $events = @(foreach ($record in $found) {
            $message = $null
            $formatError = $null
            try { $message = $record.FormatDescription() }
            catch { $formatError = [string]$_.Exception.Message }
            [pscustomobject]@{
                Id           = $record.Id
                ProviderName = $record.ProviderName
                Level        = $record.Level
                TimeCreated  = $record.TimeCreated
                Message      = $message
                MessageError = $formatError
            }
        })
    [pscustomobject]@{ Failure = @($fatal)[0]; Events = $events }
}
$windowStart = (Get-Date).AddHours(-[double]$HrwParams.lookback_hours)
"$HrwB PART window"
[pscustomobject]@{
    LookbackHours = [double]$HrwParams.lookback_hours
    StartTime     = $windowStart.ToUniversalTime().ToString('o')
} | ConvertTo-Json
foreach ($query in @($HrwParams.event_logs)) {
    "$HrwB PART log " + [string]$query.log
    try {
        $filter = @{ LogName = [string]$query.log; Id = [int[]]@($query.ids); StartTime = $windowStart }
        $read = Read-HrwEvents $filter 200
        if ($read.Failure) { Write-HrwError $read.Failure }
        else { $read.Events | ConvertTo-Json }
    }
    catch { Write-HrwError $_ }
}
"$HrwB PART scan Microsoft-SMA/Operational"
# Events whose message could not be formatted are kept: they might say it.
try {
    $read = Read-HrwEvents @{ LogName = 'Microsoft-SMA/Operational'; StartTime = $windowStart } 500
    if ($read.Failure) { Write-HrwError $read.Failure }
    else {
        $read.Events |
            Where-Object { $_.MessageError -or ($_.Message -and $_.Message.Contains('Win32 Process Exited with code [4294967295]')) } |
            ConvertTo-Json
    }
}
catch { Write-HrwError $_ }
"$HrwB END events"
#endregion hrw:events

#region hrw:extservice
"$HrwB BEGIN ext_service"
# The extension-based worker's service; a service that does not exist prints nothing.
try {
    Get-CimInstance -ClassName Win32_Service -Filter "Name='HybridWorkerService'" -ErrorAction Stop |
        Select-Object -Property @('Name', 'State', 'StartMode') |
        ConvertTo-Json
}
catch { Write-HrwError $_ }
"$HrwB END ext_service"
#endregion hrw:extservice

#region hrw:identity
"$HrwB BEGIN identity"
# Asks a local identity endpoint for a token, never through a proxy, and prints only the
# HTTP status, whether a token field came back, the challenge header and the error text:
# the body is dropped here, on the host, so no token leaves it.
function Invoke-HrwIdentity {
    param([string]$Url)
    $result = [ordered]@{ Answered = $false; Status = $null; TokenPresent = $false; Challenge = $null; Error = $null }
    $response = $null
    try {
        $request = [System.Net.HttpWebRequest]::Create($Url)
        $request.Proxy = $null
        $request.Timeout = $HrwTimeoutMs
        $request.ReadWriteTimeout = $HrwTimeoutMs
        $request.Headers.Add('Metadata', 'true')
        try { $response = $request.GetResponse() }
        catch {
            $web = $_.Exception
            while ($web -and -not ($web -is [System.Net.WebException])) { $web = $web.InnerException }
            if (-not $web -or -not $web.Response) {
                $failure = $_.Exception
                while ($failure.InnerException) { $failure = $failure.InnerException }
                $result.Error = $failure.Message
                return [pscustomobject]$result
            }
            $response = $web.Response
        }
        $result.Answered = $true
        $result.Status = [int]$response.StatusCode
        $result.Challenge = $response.Headers['WWW-Authenticate']
        $reader = New-Object System.IO.StreamReader($response.GetResponseStream())
        $text = $reader.ReadToEnd()
        $reader.Dispose()
        try {
            $body = $text | ConvertFrom-Json
            $result.TokenPresent = [bool]$body.access_token
            if ($body.error) { $result.Error = (@([string]$body.error, [string]$body.error_description) | Where-Object { $_ }) -join ': ' }
        }
        catch { $null = $_ }
        $body = $null
        $text = $null
        return [pscustomobject]$result
    }
    catch {
        $result.Error = $_.Exception.Message
        return [pscustomobject]$result
    }
    finally { if ($response) { $response.Close() } }
}
"$HrwB PART imds"
try {
    Invoke-HrwIdentity 'http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://management.azure.com/' |
        ConvertTo-Json
}
catch { Write-HrwError $_ }
"$HrwB PART arc"
try {
    if ($HrwArc) {
        Invoke-HrwIdentity 'http://localhost:40342/metadata/identity/oauth2/token?api-version=2020-06-01&resource=https%3A%2F%2Fmanagement.azure.com' |
            ConvertTo-Json
    }
}
catch { Write-HrwError $_ }
"$HrwB END identity"
#endregion hrw:identity

#region hrw:remnants
"$HrwB BEGIN remnants"
# Registry keys of each kind (whether they are remnants depends on the kind installed), and
# the V2 worker's registrations (JobRuntimeDataServiceUri, AzureResourceId under V2).
"$HrwB PART keys"
try {
    @(foreach ($key in @('HKLM:\SOFTWARE\Microsoft\HybridRunbookWorker', 'HKLM:\SOFTWARE\Microsoft\HybridRunbookWorkerV2', 'HKLM:\SOFTWARE\Microsoft\Azure\HybridWorker')) {
            [pscustomobject]@{ Path = $key; Exists = (Test-Path -LiteralPath $key) }
        }) | ConvertTo-Json
}
catch { Write-HrwError $_ }
"$HrwB PART v2"
try {
    $v2Root = 'HKLM:\SOFTWARE\Microsoft\HybridRunbookWorkerV2'
    if (Test-Path -LiteralPath $v2Root) {
        @(Get-ChildItem -LiteralPath $v2Root -Recurse -ErrorAction Stop | ForEach-Object {
                $uri = $_.GetValue('JobRuntimeDataServiceUri')
                if ($uri) {
                    [pscustomobject]@{
                        Key                      = $_.Name
                        JobRuntimeDataServiceUri = [string]$uri
                        AzureResourceId          = [string]$_.GetValue('AzureResourceId')
                    }
                }
            }) | ConvertTo-Json
    }
}
catch { Write-HrwError $_ }
"$HrwB END remnants"
#endregion hrw:remnants

#region hrw:arcacl
"$HrwB BEGIN arc_acl"
# The custom Hybrid Worker credential named in the inventory (the host keeps no public
# record of it): its entries on the Arc agent's Tokens folder and the extension's folder,
# and Microsoft-SMA events with exit code 2148734720 in the events block's window
# (Read-HrwEvents and $windowStart are the events block's).
$aclAccount = [string]$HrwParams.worker_credential_account
"$HrwB PART account"
[pscustomobject]@{ Account = $aclAccount; Arc = $HrwArc } | ConvertTo-Json
foreach ($aclPath in @('C:\ProgramData\AzureConnectedMachineAgent\Tokens', 'C:\Packages\Plugins\Microsoft.Azure.Automation.HybridWorker.HybridWorkerForWindows')) {
    "$HrwB PART acl " + $aclPath
    try {
        if ($HrwArc -and $aclAccount) {
            (Get-Acl -LiteralPath $aclPath -ErrorAction Stop).Access |
                Select-Object -Property @('IdentityReference', 'FileSystemRights', 'AccessControlType', 'IsInherited') |
                ConvertTo-Json
        }
    }
    catch { Write-HrwError $_ }
}
"$HrwB PART exits"
try {
    $read = Read-HrwEvents @{ LogName = 'Microsoft-SMA/Operational'; StartTime = $windowStart } 500
    if ($read.Failure) { Write-HrwError $read.Failure }
    else {
        $read.Events |
            Where-Object { $_.Message -and $_.Message.Contains('Win32 Process Exited with code [2148734720]') } |
            Select-Object -Property @('Id', 'ProviderName', 'Level', 'TimeCreated', 'Message') |
            ConvertTo-Json
    }
}
catch { Write-HrwError $_ }
"$HrwB END arc_acl"
#endregion hrw:arcacl
